(function () {
  // Security keys and passkeys (WebAuthn Level 2): the form with
  // data-webauthn holds the options the module made; the answer goes into
  // its hidden fields and the form is posted like any other.
  var form = document.querySelector('form[data-webauthn]');
  if (!form) { return; }
  function show(id) {
    var p = document.getElementById(id);
    if (p) { p.hidden = false; }
  }
  if (!window.PublicKeyCredential || !navigator.credentials) {
    show('webauthn-unsupported');
    form.querySelector('button').disabled = true;
    return;
  }
  function bytes(s) {
    return Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')),
      function (c) { return c.charCodeAt(0); });
  }
  function text(b) {
    return btoa(String.fromCharCode.apply(null, new Uint8Array(b)))
      .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function list(ids) {
    return (ids || []).map(function (id) {
      return {type: 'public-key', id: bytes(id)};
    });
  }
  // The answer's fields are made here: without this script the form posts
  // none, and the module answers 400.
  function set(name, value) {
    var field = form.elements[name];
    if (!field) {
      field = document.createElement('input');
      field.type = 'hidden';
      field.name = name;
      form.appendChild(field);
    }
    field.value = value;
  }
  function ask() {
    var o = JSON.parse(form.getAttribute('data-webauthn'));
    if (o.mode === 'create') {
      return navigator.credentials.create({publicKey: {
        challenge: bytes(o.challenge),
        rp: {id: o.rpId, name: o.rpName},
        user: {id: bytes(o.userId), name: o.userName,
               displayName: o.userName},
        pubKeyCredParams: [{type: 'public-key', alg: -7},
                           {type: 'public-key', alg: -8},
                           {type: 'public-key', alg: -257}],
        excludeCredentials: list(o.exclude),
        authenticatorSelection: {residentKey: 'preferred',
                                 userVerification: 'preferred'},
        attestation: 'none',
        timeout: 120000
      }}).then(function (c) {
        set('credential_id', c.id);
        set('client_data', text(c.response.clientDataJSON));
        set('attestation_object', text(c.response.attestationObject));
        set('transports', c.response.getTransports
          ? c.response.getTransports().join(',') : '');
      });
    }
    return navigator.credentials.get({publicKey: {
      challenge: bytes(o.challenge),
      rpId: o.rpId,
      allowCredentials: list(o.allow),
      userVerification: o.userVerification,
      timeout: 120000
    }}).then(function (c) {
      set('credential_id', c.id);
      set('client_data', text(c.response.clientDataJSON));
      set('authenticator_data', text(c.response.authenticatorData));
      set('signature', text(c.response.signature));
      set('user_handle', c.response.userHandle
        ? text(c.response.userHandle) : '');
    });
  }
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    if (!form.reportValidity()) { return; }
    var button = form.querySelector('button');
    button.disabled = true;
    ask().then(function () { form.submit(); }, function () {
      button.disabled = false;
      show('webauthn-cancelled');
    });
  });
})();

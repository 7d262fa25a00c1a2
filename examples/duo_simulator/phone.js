// The simulated phone of examples/duo_simulator.py: reload when something
// changes for this user. Without JavaScript, a <noscript> meta refresh
// reloads the page every 2 seconds instead.
(function () {
  "use strict";
  var body = document.body;
  var user = body.getAttribute("data-user");
  var seen = body.getAttribute("data-version");
  if (user === null || seen === null || !window.fetch) {
    return;
  }
  var url = "/phone/" + encodeURIComponent(user) + "/version";
  function poll() {
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && String(data.version) !== seen) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 1000);
})();

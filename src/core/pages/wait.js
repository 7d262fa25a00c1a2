
(function () {
  var box = document.getElementById('wait');
  var status = box.getAttribute('data-status');
  var done = box.getAttribute('data-done');
  function poll() {
    fetch(status, {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.state === 'waiting') { setTimeout(poll, 1000); } else { location.replace(done); }
      })
      .catch(function () {
        setTimeout(function () { location.replace(done); }, 3000);
      });
  }
  poll();
})();

// "Copy codes" next to new recovery codes. Without this script the button
// stays hidden and the codes are plain text to select; with it, one press
// puts them on the clipboard, one a line, and the status line says so.
(function () {
  'use strict';
  var button = document.getElementById('copy-codes');
  var list = document.getElementById('codes-list');
  var status = document.getElementById('copy-status');
  if (!button || !list || !status || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener('click', function () {
    var codes = [];
    list.querySelectorAll('code').forEach(function (code) {
      codes.push(code.textContent);
    });
    navigator.clipboard.writeText(codes.join('\n') + '\n').then(function () {
      status.textContent = status.getAttribute('data-copied');
    }, function () {
      status.textContent = status.getAttribute('data-failed');
    });
  });
}());

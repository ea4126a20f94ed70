// The console's own script (served from this server; the CSP allows no inline script).
// "Select everyone on this page": a header checkbox with data-select-all="NAME" ticks every
// checkbox named NAME.
document.addEventListener("change", function (e) {
  var box = e.target;
  var name = box && box.getAttribute && box.getAttribute("data-select-all");
  if (!name) return;
  document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (b) {
    b.checked = box.checked;
  });
});

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
// A copy button: data-copy="ID" copies the text of the element with that id, and says so in
// the status next to it.
document.addEventListener("click", function (e) {
  var button = e.target && e.target.closest && e.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) return;
  var said = button.parentNode.querySelector(".copied");
  var say = function (text) { if (said) said.textContent = text; };
  var text = source.textContent.trim();
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(function () { say("Copied."); }, function () {
      select(source); say("Selected: press Ctrl+C (⌘C) to copy.");
    });
  } else {
    select(source); say("Selected: press Ctrl+C (⌘C) to copy.");
  }
});
function select(el) {
  var range = document.createRange();
  range.selectNodeContents(el);
  var sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
}

// The only script, and every page works without it: a confirmation dialog before a delete (forms, or the button that
// submits, marked data-confirm), a busy state on a button whose action waits for a vendor (data-busy: its text while
// waiting; the form is not sent twice),
// copy buttons (data-copy names the element whose text is copied), and selects that submit their form on change
// (data-autosubmit: the workspace switcher, the new key's provider); a route step's provider offers its own models in
// the step's model field (data-model-input names that field).
document.addEventListener("submit", function (event) {
  var form = event.target;
  // A confirmation on the button that submits (a card's Deactivate) or on the form.
  var submitter = event.submitter && event.submitter.dataset && event.submitter.dataset.confirm ? event.submitter : null;
  var source = submitter || form;
  if (!source.dataset || !source.dataset.confirm || form.dataset.confirmed === "yes") return;
  event.preventDefault();
  var dialog = document.createElement("dialog");
  dialog.setAttribute("aria-label", "Confirm");
  var text = document.createElement("p");
  text.textContent = source.dataset.confirm;
  var actions = document.createElement("div");
  actions.className = "actions";
  var cancel = document.createElement("button");
  cancel.type = "button"; cancel.textContent = "Cancel"; cancel.id = "confirm-cancel";
  var ok = document.createElement("button");
  ok.type = "button"; ok.textContent = source.dataset.confirmLabel || "Delete"; ok.className = "danger"; ok.id = "confirm-ok";
  actions.append(cancel, ok); dialog.append(text, actions); document.body.append(dialog);
  cancel.addEventListener("click", function () { dialog.close(); dialog.remove(); });
  ok.addEventListener("click", function () {
    form.dataset.confirmed = "yes"; dialog.close();
    // Submitted again by the same button, so its formaction holds.
    if (form.requestSubmit) { form.requestSubmit(submitter || undefined); } else { form.submit(); }
    form.dataset.confirmed = "";
  });
  dialog.showModal(); cancel.focus();
});
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
  if (!button) return;
  var source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent).then(function () {
    var label = button.textContent; button.textContent = "Copied"; setTimeout(function () { button.textContent = label; }, 1500);
  });
});
document.addEventListener("change", function (event) {
  var select = event.target;
  if (select.matches && select.matches("select[data-autosubmit]") && select.value && select.form) select.form.submit();
  if (select.matches && select.matches("select[data-model-input]")) {
    var input = document.getElementById(select.dataset.modelInput);
    var list = select.value ? "route-models-" + select.value : "route-models";
    if (input) input.setAttribute("list", document.getElementById(list) ? list : "route-models");
  }
});
// A button whose action waits for a vendor says so and cannot be pressed again; disabled a moment after the submit, so
// its own name and value are still sent.
document.addEventListener("submit", function (event) {
  if (event.defaultPrevented) return;
  var form = event.target;
  if (form.dataset.busy === "yes") { event.preventDefault(); return; }
  var button = event.submitter;
  if (!button || !button.dataset || !button.dataset.busy) return;
  form.dataset.busy = "yes";
  button.classList.add("busy");
  button.setAttribute("aria-busy", "true");
  button.dataset.label = button.textContent;
  button.textContent = button.dataset.busy;
  setTimeout(function () { button.disabled = true; }, 0);
});
// The browser's back button may show the page as it was left: busy buttons come back.
window.addEventListener("pageshow", function () {
  document.querySelectorAll("button.busy").forEach(function (button) {
    button.classList.remove("busy"); button.disabled = false; button.removeAttribute("aria-busy");
    if (button.dataset.label) button.textContent = button.dataset.label;
  });
  document.querySelectorAll("form[data-busy]").forEach(function (form) { delete form.dataset.busy; });
});

// The only script: a confirmation dialog before a delete (forms marked data-confirm), and toasts that fade.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.dataset || !form.dataset.confirm || form.dataset.confirmed === "yes") return;
  event.preventDefault();
  var dialog = document.createElement("dialog");
  dialog.setAttribute("aria-label", "Confirm");
  var text = document.createElement("p");
  text.textContent = form.dataset.confirm;
  var actions = document.createElement("div");
  actions.className = "actions";
  var cancel = document.createElement("button");
  cancel.type = "button"; cancel.textContent = "Cancel"; cancel.id = "confirm-cancel";
  var ok = document.createElement("button");
  ok.type = "button"; ok.textContent = "Delete"; ok.className = "danger"; ok.id = "confirm-ok";
  actions.append(cancel, ok); dialog.append(text, actions); document.body.append(dialog);
  cancel.addEventListener("click", function () { dialog.close(); dialog.remove(); });
  ok.addEventListener("click", function () { form.dataset.confirmed = "yes"; dialog.close(); form.requestSubmit ? form.requestSubmit() : form.submit(); });
  dialog.showModal(); cancel.focus();
});

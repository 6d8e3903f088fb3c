// Upload progress for the material slots (htmx reports XHR progress as events).
document.addEventListener("htmx:xhr:progress", function (event) {
  var form = event.target.closest ? event.target.closest("form.upload-form") : null;
  if (!form || !event.detail.lengthComputable) { return; }
  var bar = form.querySelector("progress");
  bar.hidden = false;
  bar.classList.add("uploading");
  bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
});

// The slots poll every 4 s to show a phone upload arriving. The poll is held back here, not
// with an hx-trigger filter (htmx evaluates filters with eval, which the CSP forbids): not
// while the page is hidden, not during an upload, and not while a chosen file waits for its
// button (the swap would replace the file input and drop the choice).
document.addEventListener("htmx:beforeRequest", function (event) {
  var slot = event.detail.elt;
  if (!slot.classList || !slot.classList.contains("slot")) { return; }
  var input = slot.querySelector("input[type=file]");
  if (document.visibilityState !== "visible" || slot.querySelector(".uploading") || (input && input.value)) {
    event.preventDefault();
  }
});

// Upload progress for the material slots (htmx reports XHR progress as events).
document.addEventListener("htmx:xhr:progress", function (event) {
  var form = event.target.closest ? event.target.closest("form.upload-form") : null;
  if (!form || !event.detail.lengthComputable) { return; }
  var bar = form.querySelector("progress");
  bar.hidden = false;
  bar.classList.add("uploading");
  bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
});

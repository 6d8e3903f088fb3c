// Zoom and rotate the uploaded scans on the review page (no inline script: CSP-friendly).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-zoom],[data-rotate]");
  if (!button) { return; }
  var image = button.closest(".material").querySelector(".viewer img");
  var scale = parseFloat(image.dataset.scale || "1");
  var angle = parseInt(image.dataset.angle || "0", 10);
  if (button.dataset.zoom) { scale = Math.min(4, Math.max(0.25, scale * parseFloat(button.dataset.zoom))); }
  if (button.dataset.rotate) { angle = (angle + parseInt(button.dataset.rotate, 10)) % 360; }
  image.dataset.scale = scale;
  image.dataset.angle = angle;
  image.style.transform = "scale(" + scale + ") rotate(" + angle + "deg)";
});

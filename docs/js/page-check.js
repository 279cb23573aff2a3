// Marks the page once loaded: how many images loaded (or "failed") and how many formulas were drawn with a
// size (or "failed"), so a headless browser can tell that nothing on the page is broken.
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const drawn = (el) => el.getBoundingClientRect().width > 0 && el.getBoundingClientRect().height > 0;
  const imagesOk = images.every((im) => im.complete && im.naturalWidth > 0);
  const formulas = Array.from(document.querySelectorAll("math"));
  document.body.setAttribute("data-images-loaded", imagesOk ? String(images.length) : "failed");
  document.body.setAttribute("data-formulas-drawn", formulas.every(drawn) ? String(formulas.length) : "failed");
});

// Renders the math of the pages with the KaTeX served from assets/katex/ (no network needed).
// pymdownx.arithmatex (generic mode) writes $...$ as <span class="arithmatex">\(...\)</span> and $$...$$ as
// <div class="arithmatex">\[...\]</div>. Material's document$ fires on every page shown, including
// instant navigation.
(function () {
  function render() {
    document.querySelectorAll(".arithmatex").forEach(function (element) {
      var tex = element.textContent.trim().replace(/^\\[([]/, "").replace(/\\[)\]]$/, "");
      katex.render(tex, element, { displayMode: element.tagName === "DIV", throwOnError: false });
    });
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(render);
  } else {
    document.addEventListener("DOMContentLoaded", render);
  }
})();

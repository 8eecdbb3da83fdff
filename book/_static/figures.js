/* Model Collapse, executable: every figure links to its own image at full size.
 *
 * The figures are drawn at the width of the desktop column (about 7 in); a phone's column shrinks
 * them to about half, where their smallest text is too small to read.  Tapping a figure opens the
 * image itself, which the phone's browser shows at full size and zooms.  No kernel, no server:
 * served from the built site (_config.yml, html_js_files); tests/test_browser.py checks it.
 */
(function () {
  'use strict';
  function linkFigures(doc) {
    doc.querySelectorAll('.cell_output img').forEach(function (img) {
      if (img.closest('a')) return;
      var a = doc.createElement('a');
      a.href = img.getAttribute('src');
      a.className = 'mc-full-size';
      a.title = 'Open this figure at full size';
      img.parentNode.insertBefore(a, img);
      a.appendChild(img);
    });
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { linkFigures(document); });
  } else {
    linkFigures(document);
  }
}());

// Runs in <head> before the first paint (a classic script: a module would run after it), so a
// page never flashes light before turning dark. It applies the theme this browser chose with the
// toggle (src/theme.ts); without a choice there is nothing to do: the stylesheet follows the
// system's prefers-color-scheme. A separate file because the CSP allows scripts from 'self' only.
(function () {
  try {
    var chosen = localStorage.getItem("logharbor.theme");
    if (chosen === "dark" || chosen === "light") document.documentElement.dataset.theme = chosen;
  } catch (e) {
    // storage switched off: follow the system
  }
})();

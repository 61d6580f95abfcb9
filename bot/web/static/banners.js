// The banners (done, error, urgent, connection) stack in one strip pinned to the top, and each
// page's top bar is pinned right below it: a banner never covers the bar's back button, and
// two banners never cover each other. The strip's height changes as banners come and go.
'use strict';

(function () {
  const strip = document.querySelector('.banners');
  if (!strip) return;
  const root = document.documentElement;
  new ResizeObserver(() => {
    root.style.setProperty('--banners-height', strip.offsetHeight + 'px');
  }).observe(strip);
})();

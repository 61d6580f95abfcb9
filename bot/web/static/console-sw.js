// The console's service worker, served as /console/sw.js so that its scope is the console.
// It only shows notifications the page asks for (an urgent request) and opens the ticket when
// one is tapped; it caches nothing, so every page and module still comes from the server.
'use strict';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const id = (event.notification.data || {}).ticketId;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const open = windows.find((client) => new URL(client.url).pathname === '/console/');
    if (!open) return self.clients.openWindow(Number.isInteger(id) ? '/console/#t=' + id : '/console/');
    await open.focus();
    if (Number.isInteger(id)) open.postMessage({ type: 'open-ticket', id });
    return undefined;
  })());
});

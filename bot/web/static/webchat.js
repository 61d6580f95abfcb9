// Webchat for residents: a small WeChat-like stand-in. See docs/api.md.
// Plain ES modules, no build step: this one routes between the screens and starts the page.
// Top-level code in a module may use only webchat-core.js (it imports nothing, so it always
// runs first) and its own names; anything else only inside functions.

import { INVITE, showView, state, views } from './webchat-core.js';
import { closeSocket, openChat } from './webchat-chat.js';
import { loadRooms, renderList } from './webchat-list.js';
import { cancelRecording } from './webchat-media.js';
import { askName, loadSession } from './webchat-name.js';

// ---------- routing ----------

function route() {
  if (!state.name) { askName(); return; }
  const match = location.hash.match(/^#chat=(.+)$/);
  const chatId = match ? decodeURIComponent(match[1]) : '';
  if (chatId === 'private' || INVITE.test(chatId)) {
    if (!state.chat || state.chat.id !== chatId || views.chat.hidden) {
      state.enteredFromList = !views.list.hidden;
      openChat(chatId);
    }
    return;
  }
  cancelRecording();
  closeSocket();
  state.chat = null;
  renderList();
  showView('list');
}

window.addEventListener('hashchange', route);

localStorage.removeItem('webchat.user_id');  // the old self-made identity: the server issues one now
state.invite = new URLSearchParams(location.search).get('room');
loadRooms();
loadSession();

export { route };

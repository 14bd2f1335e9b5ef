// rtc-cli's web client: log in, call an id or answer, join a room of up to 4, mute,
// camera off, hang up, and chat, over the signaling protocol of docs/protocol.md on this
// page's own server (/ws). Each call is one RTCPeerConnection (a room has one per other
// member) with H.264 preferred, Opus, and a DataChannel named "chat" that the offerer
// opens. Chat text is only ever put in the page as text (textContent), never as HTML.
//
// The query string can drive the page (the tests use it; a person can bookmark it):
//   id, token     log in at once
//   call=ID       then call ID;  room=NAME  then join room NAME;  answer=1  accept calls
//   say=TEXT      send TEXT in the chat once a chat channel opens
//   hangup_after=S  hang up (or leave the room) S seconds after the first connection
//   only=PREFIX   send only local ICE candidates whose address starts with PREFIX
//   sendfile=BYTES&sendname=N  send that many random bytes as file N once connected
// Progress goes to console.log, lines starting with "web:".
"use strict";

const params = new URLSearchParams(location.search);
const CHAT_MAX_BYTES = 4096; // a chat message's UTF-8 size limit (docs/protocol.md)
const ONLY = params.get("only");
const log = (...args) => console.log("web:", ...args);
const $ = (id) => document.getElementById(id);

const app = {
  ws: null,
  id: null,
  iceServers: [],
  stream: null,
  muted: false,
  camera: true,
  room: null,          // the room we are in, if any
  legs: new Map(),     // call_id -> Leg
  incoming: null,      // {callId, from} of a call ringing here
  queue: Promise.resolve(),
  firstConnectedAt: 0,
  said: false,
  online: null,        // Map id -> "available" | "busy", when the server shares presence
};

class Leg {
  constructor(callId, peer, direction) {
    this.callId = callId;
    this.peer = peer;
    this.direction = direction; // "outgoing" | "incoming"
    this.state = "calling";
    this.pc = null;
    this.chat = null;
    this.pending = [];
    this.tile = null;
    this.connectedAt = 0;
    this.decoded = 0;
  }
}

function send(message) {
  if (app.ws && app.ws.readyState === WebSocket.OPEN) app.ws.send(JSON.stringify(message));
}

function notice(text) {
  $("notice").textContent = text;
  log("notice:", text);
}

function clock(ms) {
  const s = Math.floor(ms / 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

// ---- screens -------------------------------------------------------------------

function show(screen) {
  $("login").hidden = screen !== "login";
  $("lobby").hidden = screen !== "lobby";
  $("stage").hidden = screen !== "call";
  $("chat").hidden = screen !== "call";
}

function refresh() {
  const legs = [...app.legs.values()];
  if (legs.length === 0 && !app.room) {
    show(app.id ? "lobby" : "login");
  } else {
    show("call");
  }
  $("incoming").hidden = !app.incoming;
  if (app.incoming) $("incomingtext").textContent = `${app.incoming.from} is calling`;
  $("tiles").style.setProperty("--cols", legs.length > 1 ? 2 : 1);
  const now = Date.now();
  let text;
  if (app.room) {
    const connected = legs.filter((l) => l.state === "connected").length;
    text = legs.length ? `room ${app.room} · ${connected} of ${legs.length} connected`
      : `room ${app.room} · waiting for others to join`;
  } else if (legs.length) {
    const l = legs[0];
    text = l.state === "connected" ? `${l.peer} · connected ${clock(now - l.connectedAt)}`
      : `${l.peer} · ${l.state}`;
  } else {
    text = "";
  }
  $("callstate").textContent = text;
  $("hangup").textContent = app.room ? "Leave" : "Hang up";
  $("mute").setAttribute("aria-pressed", String(app.muted));
  $("mute").textContent = app.muted ? "Unmute" : "Mute";
  $("camera").setAttribute("aria-pressed", String(!app.camera));
  $("camera").textContent = app.camera ? "Camera off" : "Camera on";
}
setInterval(refresh, 1000);

function tileFor(leg) {
  if (leg.tile) return leg.tile;
  const tile = document.createElement("div");
  tile.className = "tile";
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = leg.peer;
  tile.append(video, label);
  $("tiles").append(tile);
  leg.tile = tile;
  return tile;
}

// ---- chat ----------------------------------------------------------------------

function addMessage(from, text) {
  const li = document.createElement("li");
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = new Date().toTimeString().slice(0, 5);
  const who = document.createElement("span");
  who.className = "from";
  who.textContent = from;
  const body = document.createElement("span");
  body.textContent = text; // never HTML
  li.append(time, who, body);
  $("messages").append(li);
  log("shown", from, JSON.stringify(body.textContent));
  li.scrollIntoView({ block: "end" });
}

function setupChat(leg, channel) {
  leg.chat = channel;
  channel.onopen = () => {
    log("chat open with", leg.peer);
    const say = params.get("say");
    if (say && !app.said) {
      app.said = true;
      sendChat(say);
    }
  };
  channel.onmessage = ({ data }) => {
    if (typeof data !== "string") return;
    if (new TextEncoder().encode(data).length > CHAT_MAX_BYTES) {
      notice(`a message from ${leg.peer} was over ${CHAT_MAX_BYTES} bytes and was dropped`);
      return;
    }
    log("chat from", leg.peer + ":", JSON.stringify(data));
    addMessage(leg.peer, data);
  };
}

function sendChat(text) {
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > CHAT_MAX_BYTES) {
    notice(`not sent: the message is ${bytes} bytes; the limit is ${CHAT_MAX_BYTES}`);
    return false;
  }
  const open = [...app.legs.values()].filter((l) => l.chat && l.chat.readyState === "open");
  if (open.length === 0) {
    notice("not sent: nobody to chat with yet");
    return false;
  }
  for (const l of open) l.chat.send(text);
  log("chat sent to", open.map((l) => l.peer).join(","));
  addMessage(app.id, text);
  return true;
}

// ---- file transfer ---------------------------------------------------------------
// One DataChannel labelled "file" per transfer, opened by the sender: an offer
// {type, name, size, sha256}, the answer {type: accept|refuse}, the bytes in binary
// messages (16 KiB from this page) paced by bufferedAmount, then {type: done|failed} from the receiver
// (docs/protocol.md section 11).

const FILE_CHUNK = 16 * 1024;
const FILE_HIGH_WATER = 1024 * 1024;
const FILE_MAX_BYTES = 2 * 1024 * 1024 * 1024;

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// The channel's messages, one at a time: strings parsed as JSON, binary as ArrayBuffer.
function messages(channel) {
  const queue = [], waiting = [];
  channel.binaryType = "arraybuffer";
  channel.onmessage = ({ data }) => {
    const m = typeof data === "string" ? JSON.parse(data) : data;
    if (waiting.length) waiting.shift()(m); else queue.push(m);
  };
  channel.onclose = () => { while (waiting.length) waiting.shift()(null); };
  return () => queue.length ? Promise.resolve(queue.shift())
    : new Promise((resolve) => waiting.push(resolve));
}

function progressRow(label) {
  const li = document.createElement("li");
  const text = document.createElement("span");
  const bar = document.createElement("progress");
  bar.max = 100;
  text.textContent = label + " ";
  li.append(text, bar);
  $("messages").append(li);
  return (fraction, done) => {
    bar.value = Math.round(100 * fraction);
    if (done) text.textContent = done + " ";
  };
}

function safeName(name) {
  const last = String(name).split(/[\/\\]/).pop().replace(/[\u0000-\u001f\u007f-\u009f]/g, "").trim();
  return last.replace(/^\.+/, "") || "download";
}

async function sendFile(leg, name, data) {
  const sha256 = await sha256Hex(data);
  const channel = leg.pc.createDataChannel("file");
  const next = messages(channel);
  const progress = progressRow(`sending ${name} to ${leg.peer}`);
  await new Promise((resolve) => { channel.onopen = resolve; });
  channel.send(JSON.stringify({ type: "offer", name, size: data.byteLength, sha256 }));
  log("file offered", name, data.byteLength, sha256);
  const answer = await next();
  if (!answer || answer.type !== "accept") {
    progress(0, `${name}: refused (${answer && answer.reason})`);
    log("file refused", name, answer && answer.reason);
    return;
  }
  channel.bufferedAmountLowThreshold = FILE_HIGH_WATER / 4;
  for (let at = 0; at < data.byteLength; at += FILE_CHUNK) {
    if (channel.bufferedAmount > FILE_HIGH_WATER) {
      await new Promise((resolve) => { channel.onbufferedamountlow = resolve; });
    }
    channel.send(data.slice(at, at + FILE_CHUNK));
    progress(Math.min(1, (at + FILE_CHUNK) / data.byteLength));
  }
  const end = await next();
  const ok = end && end.type === "done";
  progress(1, ok ? `sent ${name}` : `${name} failed: ${end && end.reason}`);
  log(ok ? "file sent" : "file failed", name, ok ? sha256 : end && end.reason);
  channel.close();
}

async function receiveFile(leg, channel) {
  const next = messages(channel);
  const offer = await next();
  if (!offer || offer.type !== "offer") return;
  const name = safeName(offer.name);
  if (!(offer.size >= 0 && offer.size <= FILE_MAX_BYTES)) {
    channel.send(JSON.stringify({ type: "refuse", reason: "too large" }));
    return;
  }
  channel.send(JSON.stringify({ type: "accept" }));
  const progress = progressRow(`receiving ${name} from ${leg.peer}`);
  const parts = [];
  let got = 0;
  while (got < offer.size) {
    const part = await next();
    if (!(part instanceof ArrayBuffer)) {
      progress(got / offer.size, `${name}: broke off`);
      return;
    }
    parts.push(part);
    got += part.byteLength;
    progress(got / offer.size);
  }
  const blob = new Blob(parts);
  const sha256 = await sha256Hex(await blob.arrayBuffer());
  if (got !== offer.size || sha256 !== String(offer.sha256).toLowerCase()) {
    channel.send(JSON.stringify({ type: "failed", reason: "SHA-256 mismatch" }));
    progress(1, `${name}: corrupt, discarded`);
    log("file corrupt", name);
    return;
  }
  channel.send(JSON.stringify({ type: "done" }));
  progress(1, `received ${name}`);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.textContent = `save ${name}`;
  $("messages").lastElementChild.append(link);
  log("file received", name, got, sha256);
}

async function sendPicked(files) {
  const open = [...app.legs.values()].filter((l) => l.pc && l.state === "connected");
  if (!open.length) { notice("no call to send a file in"); return; }
  for (const file of files) {
    const data = await file.arrayBuffer();
    for (const leg of open) sendFile(leg, file.name, data).catch((err) => notice(String(err)));
  }
}

// ---- media ---------------------------------------------------------------------

async function localStream() {
  if (!app.stream) {
    app.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
      audio: true,
    });
    $("self").srcObject = app.stream;
    applyMediaState();
  }
  return app.stream;
}

function applyMediaState() {
  if (!app.stream) return;
  for (const t of app.stream.getAudioTracks()) t.enabled = !app.muted;
  for (const t of app.stream.getVideoTracks()) t.enabled = app.camera;
}

function sendMediaState(leg) {
  send({ type: "media_state", call_id: leg.callId, muted: app.muted, camera: app.camera });
}

function preferH264(transceiver) {
  const caps = RTCRtpReceiver.getCapabilities("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const h264 = caps.codecs.filter((c) => c.mimeType === "video/H264");
  const rest = caps.codecs.filter((c) => c.mimeType !== "video/H264");
  transceiver.setCodecPreferences(h264.concat(rest));
}

async function startMedia(leg, offerer) {
  const stream = await localStream();
  const pc = new RTCPeerConnection({ iceServers: app.iceServers });
  leg.pc = pc;
  pc.onicecandidate = ({ candidate: c }) => {
    if (!c) {
      send({ type: "end_of_candidates", call_id: leg.callId });
      return;
    }
    const words = (c.candidate || "").split(" ");
    if (!c.candidate || (ONLY && !(words.length > 5 && words[4].startsWith(ONLY)))) return;
    send({ type: "candidate", call_id: leg.callId, candidate: {
      candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex,
      username_fragment: c.usernameFragment } });
  };
  pc.onconnectionstatechange = () => {
    const s = pc.connectionState;
    log("state", leg.peer, s);
    if (s === "connected") {
      leg.state = "connected";
      if (!leg.connectedAt) leg.connectedAt = Date.now();
      if (!app.firstConnectedAt) {
        app.firstConnectedAt = Date.now();
        const testSize = Number(params.get("sendfile") || 0);
        if (testSize > 0) {
          // A test file of random bytes (crypto.getRandomValues fills 64 KiB at a time).
          const data = new Uint8Array(testSize);
          for (let at = 0; at < testSize; at += 65536) {
            crypto.getRandomValues(data.subarray(at, Math.min(testSize, at + 65536)));
          }
          sendFile(leg, params.get("sendname") || "test.bin", data.buffer)
            .catch((err) => notice(String(err)));
        }
        const after = Number(params.get("hangup_after") || 0);
        if (after > 0) setTimeout(hangup, after * 1000);
      }
    } else if (s === "disconnected") {
      leg.state = "reconnecting";
    } else if (s === "failed") {
      notice(`could not connect to ${leg.peer}`);
      send({ type: "hangup", call_id: leg.callId });
      endLeg(leg.callId, "ice-failed");
    }
    refresh();
  };
  pc.ontrack = (e) => {
    const video = tileFor(leg).querySelector("video");
    video.srcObject = e.streams[0] || new MediaStream([e.track]);
    video.play().catch((err) => log("play:", String(err)));
  };
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  for (const t of pc.getTransceivers()) {
    if (t.receiver.track.kind === "video") preferH264(t);
  }
  if (offerer) setupChat(leg, pc.createDataChannel("chat"));
  pc.ondatachannel = ({ channel }) => {
    if (channel.label === "chat") setupChat(leg, channel);
    if (channel.label === "file") receiveFile(leg, channel).catch((err) => notice(String(err)));
  };
  watchStats(leg);
  sendMediaState(leg);
  if (offerer) {
    await pc.setLocalDescription(await pc.createOffer());
    send({ type: "offer", call_id: leg.callId, sdp: pc.localDescription.sdp });
  }
}

function watchStats(leg) {
  const timer = setInterval(async () => {
    if (!app.legs.has(leg.callId) || !leg.pc) { clearInterval(timer); return; }
    const report = await leg.pc.getStats();
    let level = 0;
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") leg.decoded = s.framesDecoded || 0;
      if (s.type === "inbound-rtp" && s.kind === "audio") level = s.audioLevel || 0;
    });
    if (leg.tile) leg.tile.classList.toggle("speaking", level > 0.02);
    log("decoded", leg.peer, leg.decoded);
  }, 1000);
}

async function addCandidate(leg, c) {
  await leg.pc.addIceCandidate({
    candidate: c.candidate,
    sdpMid: c.sdp_mid ?? null,
    sdpMLineIndex: c.sdp_mline_index ?? (c.sdp_mid == null ? 0 : null),
    usernameFragment: c.username_fragment ?? null,
  });
}

// ---- calls ---------------------------------------------------------------------

function placeCall(to, room) {
  const callId = crypto.randomUUID();
  const leg = new Leg(callId, to, "outgoing");
  app.legs.set(callId, leg);
  send(room ? { type: "call", call_id: callId, to, room } : { type: "call", call_id: callId, to });
  log("calling", to);
  refresh();
}

async function accept() {
  const ringing = app.incoming;
  if (!ringing) return;
  app.incoming = null;
  const leg = new Leg(ringing.callId, ringing.from, "incoming");
  leg.state = "connecting";
  app.legs.set(leg.callId, leg);
  send({ type: "accept", call_id: leg.callId });
  refresh();
  await startMedia(leg, false);
}

function refuse() {
  if (!app.incoming) return;
  send({ type: "refuse", call_id: app.incoming.callId });
  app.incoming = null;
  refresh();
}

function endLeg(callId, reason) {
  const leg = app.legs.get(callId);
  if (!leg) return;
  app.legs.delete(callId);
  log("ended", leg.peer, reason);
  if (leg.pc) leg.pc.close();
  if (leg.tile) leg.tile.remove();
  if (!app.room) notice(`call with ${leg.peer} ended: ${reason}`);
  refresh();
}

function hangup() {
  if (app.room) {
    send({ type: "leave_room", room: app.room });
    log("left room", app.room);
    app.room = null;
    for (const id of [...app.legs.keys()]) endLeg(id, "hangup");
  } else {
    for (const leg of [...app.legs.values()]) {
      send({ type: leg.state === "connected" || leg.pc ? "hangup" : "cancel", call_id: leg.callId });
      endLeg(leg.callId, "hangup");
    }
  }
  refresh();
}

// ---- signaling -----------------------------------------------------------------

async function onMessage(m) {
  const leg = m.call_id ? app.legs.get(m.call_id) : undefined;
  switch (m.type) {
    case "login_ok":
      app.id = m.id;
      app.iceServers = m.ice_servers || [];
      app.online = m.presence ? new Map() : null;
      applyPresence(m.presence || []);
      $("status").textContent = `logged in as ${m.id}`;
      log("logged in as", m.id);
      refresh();
      if (params.get("call")) placeCall(params.get("call"), null);
      if (params.get("room")) joinRoom(params.get("room"));
      break;
    case "presence_changed":
      applyPresence(m.users || []);
      break;
    case "ringing":
      if (leg) leg.state = "ringing";
      break;
    case "incoming":
      if (m.room && m.room === app.room) {
        app.incoming = { callId: m.call_id, from: m.from };
        await accept(); // a member of our room: answered without asking
      } else if (app.legs.size || app.room || app.incoming) {
        send({ type: "refuse", call_id: m.call_id }); // one call at a time
      } else {
        app.incoming = { callId: m.call_id, from: m.from };
        log("incoming call from", m.from);
        if (params.get("answer") === "1") await accept();
      }
      break;
    case "accept":
      if (leg) {
        leg.state = "connecting";
        await startMedia(leg, true);
      }
      break;
    case "offer":
      if (!leg || !leg.pc) break;
      await leg.pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
      for (const c of leg.pending.splice(0)) await addCandidate(leg, c);
      await leg.pc.setLocalDescription(await leg.pc.createAnswer());
      send({ type: "answer", call_id: leg.callId, sdp: leg.pc.localDescription.sdp });
      break;
    case "answer":
      if (!leg || !leg.pc) break;
      await leg.pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
      for (const c of leg.pending.splice(0)) await addCandidate(leg, c);
      break;
    case "candidate":
      if (!leg) break;
      if (leg.pc && leg.pc.remoteDescription) await addCandidate(leg, m.candidate);
      else leg.pending.push(m.candidate);
      break;
    case "media_state":
      if (leg && leg.tile) {
        const label = leg.tile.querySelector(".label");
        const parts = [leg.peer];
        if (m.muted) parts.push("mic muted");
        if (!m.camera) parts.push("cam off");
        label.textContent = parts.join(" · ");
      }
      break;
    case "room_joined":
      app.room = m.room;
      log("joined room", m.room, "with", m.members.join(",") || "nobody");
      await localStream();
      break;
    case "member_joined":
      if (m.room === app.room) {
        notice(`${m.id} joined`);
        placeCall(m.id, app.room);
      }
      break;
    case "member_left":
      if (m.room === app.room) {
        notice(`${m.id} left`);
        for (const l of [...app.legs.values()]) if (l.peer === m.id) endLeg(l.callId, "left");
      }
      break;
    case "refuse": case "busy": case "cancel": case "hangup":
      if (app.incoming && app.incoming.callId === m.call_id) app.incoming = null;
      endLeg(m.call_id, m.type === "hangup" ? "remote-hangup" : m.type);
      break;
    case "call_ended":
      endLeg(m.call_id, m.reason);
      break;
    case "error":
      notice(`server: ${m.message} (${m.code})`);
      if (m.call_id) endLeg(m.call_id, m.code);
      if (m.code === "room-full") app.room = null;
      break;
    case "conflict":
      notice(`logged in elsewhere: ${m.message}`);
      break;
    case "shutdown":
      notice("the server is shutting down");
      break;
    default:
      break;
  }
  refresh();
}

// Who is online (docs/protocol.md section 13): a list of ids, each a button that calls
// it; busy ones are marked and disabled. Ids go into the page as text only.
function applyPresence(users) {
  if (!app.online) return;
  for (const u of users) {
    if (u.id === app.id) continue;
    if (u.status === "offline") app.online.delete(u.id);
    else app.online.set(u.id, u.status);
  }
  const list = $("online");
  list.replaceChildren();
  const ids = [...app.online.keys()].sort();
  for (const id of ids) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    const busy = app.online.get(id) === "busy";
    button.textContent = busy ? `${id} (busy)` : id;
    button.disabled = busy;
    button.dataset.id = id;
    button.onclick = () => placeCall(id, null);
    item.append(button);
    list.append(item);
  }
  $("onlinehead").textContent = `Online (${ids.length})`;
  $("presence").hidden = false;
  log("online:", ids.map((id) => `${id}=${app.online.get(id)}`).join(",") || "(nobody)");
}

function joinRoom(name) {
  send({ type: "join_room", room: name });
}

function connect(id, token) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  app.ws = ws;
  ws.onopen = () => {
    const login = { type: "login", version: 1, id, presence: true };
    if (token) login.token = token;
    send(login);
  };
  ws.onclose = (e) => {
    $("status").textContent = `disconnected (${e.code})`;
    log("signaling closed", e.code);
  };
  ws.onmessage = ({ data }) => {
    let m;
    try { m = JSON.parse(data); } catch (err) { log("bad JSON from the server"); return; }
    app.queue = app.queue.then(() => onMessage(m)).catch((err) => {
      notice(`${m.type}: ${err}`);
    });
  };
}

// ---- wiring --------------------------------------------------------------------

$("loginform").onsubmit = (e) => {
  e.preventDefault();
  connect($("loginid").value.trim(), $("logintoken").value.trim());
};
$("callform").onsubmit = (e) => {
  e.preventDefault();
  placeCall($("callee").value.trim(), null);
};
$("roomform").onsubmit = (e) => {
  e.preventDefault();
  joinRoom($("roomname").value.trim());
};
$("accept").onclick = () => { accept().catch((err) => notice(String(err))); };
$("refuse").onclick = refuse;
$("hangup").onclick = hangup;
$("mute").onclick = () => {
  app.muted = !app.muted;
  applyMediaState();
  for (const l of app.legs.values()) sendMediaState(l);
  refresh();
};
$("camera").onclick = () => {
  app.camera = !app.camera;
  applyMediaState();
  for (const l of app.legs.values()) sendMediaState(l);
  refresh();
};
$("filepick").onchange = (e) => {
  sendPicked([...e.target.files]).catch((err) => notice(String(err)));
  e.target.value = "";
};
$("chatform").onsubmit = (e) => {
  e.preventDefault();
  if (sendChat($("chatinput").value)) $("chatinput").value = "";
};

if (params.get("id")) connect(params.get("id"), params.get("token"));
refresh();

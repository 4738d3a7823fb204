'use strict';
// The kiosk page. Agent mode: video and events from the agent's preview
// socket, sessions run by the agent (POST /sessions). Browser mode: the
// browser's own camera, BWS UI's motion trigger, and the BWS contract
// (token → upload → task) spoken by this page.
(() => {
  const cfg = JSON.parse(document.getElementById('config').textContent);
  const T = window.KIOSK_I18N[cfg.lang] || window.KIOSK_I18N.en;
  const $ = id => document.getElementById(id);
  const video = $('video'), vctx = video.getContext('2d');
  const overlay = $('overlay'), octx = overlay.getContext('2d');
  const ARROWS = { left: '\u2190', right: '\u2192', up: '\u2191', down: '\u2193', any: '' };
  // Test hooks: Playwright reads these.
  const kiosk = window.kiosk = { frames: 0, state: 'idle', result: null, events: [], mode: cfg.mode };

  document.querySelectorAll('[data-i18n]').forEach(el => { const t = T[el.dataset.i18n]; if (typeof t === 'string') el.textContent = t; });
  document.title = T.title;
  if (cfg.mirrorPreview || cfg.mode === 'browser') $('stage').classList.add('mirror');

  const say = text => { $('status').textContent = text; };
  const setState = s => { kiosk.state = s; document.body.dataset.state = s; };
  function prompt(dir) {
    $('arrow').textContent = ARROWS[dir] || '';
    say(T[dir] || dir);
  }
  function progress(k, n, tr, maxTries) {
    $('progress').max = n; $('progress').value = k;
    $('progress-label').textContent = T.step(Math.min(k + 1, n), n) + (maxTries > 1 ? ' · ' + T.tryN(tr, maxTries) : '');
  }
  function showResult(ok, code) {
    const r = $('result');
    r.hidden = false; r.className = ok ? 'ok' : 'fail';
    r.textContent = ok ? T.success : T.failure + (code ? ' – ' + (T.errors[code] || code) : '');
    $('arrow').textContent = ''; say('');
    $('start').hidden = false; $('cancel').hidden = true;
    kiosk.result = { success: ok, error: code || '' };
    setState(ok ? 'succeeded' : 'failed');
  }
  function resetResult() { $('result').hidden = true; kiosk.result = null; }

  // Overlay: face box and landmarks in the coordinates of the frame sent.
  function drawFace(ev) {
    octx.clearRect(0, 0, overlay.width, overlay.height);
    if (!ev.found) return;
    if (overlay.width !== ev.width) { overlay.width = ev.width; overlay.height = ev.height; }
    octx.lineWidth = 3; octx.strokeStyle = '#4caf50';
    const [x, y, w, h] = ev.box; octx.strokeRect(x, y, w, h);
    octx.fillStyle = '#ffeb3b';
    for (const [px, py] of ev.landmarks) { octx.fillRect(px - 1.5, py - 1.5, 3, 3); }
  }

  // ---- agent mode ----
  let session = null, frameTimes = [];
  function onEvent(ev) {
    kiosk.events.push(ev.type);
    if (kiosk.events.length > 200) kiosk.events.shift();
    switch (ev.type) {
      case 'face': drawFace(ev); break;
      case 'status': $('fps').textContent = ev.fps; break;
      case 'prompt': if (!session || ev.session === session) { setState('prompting'); prompt(ev.direction); } break;
      case 'countdown': if (ev.remaining <= 10) $('progress-label').dataset.countdown = T.countdown(ev.remaining); break;
      case 'state':
        if (session && ev.session !== session) break;
        if (ev.steps) progress(ev.step, ev.steps, ev.try, ev.maxTries);
        if (ev.state === 'performing') { setState('performing'); say(T.working); $('arrow').textContent = ''; }
        if (ev.done && session === ev.session) {
          showResult(ev.state === 'succeeded', ev.error || (ev.result && ev.result.Error));
          session = null;
        }
        break;
    }
  }
  function connect() {
    say(T.connecting);
    const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + cfg.preview);
    ws.binaryType = 'blob';
    ws.onopen = () => { $('conn').textContent = T.connected; if (kiosk.state === 'idle') say(T.ready); };
    ws.onmessage = async m => {
      if (typeof m.data === 'string') { try { onEvent(JSON.parse(m.data)); } catch (e) { /* not ours */ } return; }
      try {
        const bmp = await createImageBitmap(m.data);
        if (video.width !== bmp.width) { video.width = bmp.width; video.height = bmp.height; }
        vctx.drawImage(bmp, 0, 0); bmp.close();
        kiosk.frames++; $('frames').textContent = kiosk.frames;
      } catch (e) { /* a corrupt frame: skip */ }
    };
    ws.onclose = () => { $('conn').textContent = T.disconnected; setTimeout(connect, 1000); };
  }
  async function token() {
    if (!cfg.tokenUrl) throw new Error('no token route configured');
    const r = await fetch(cfg.tokenUrl + '?task=' + encodeURIComponent(cfg.task), { credentials: 'same-origin' });
    if (!r.ok) throw new Error('token: HTTP ' + r.status);
    return (await r.text()).trim();
  }
  async function startAgent() {
    resetResult(); setState('starting');
    try {
      const r = await fetch(cfg.sessions, { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ task: cfg.task, token: await token() }) });
      const body = await r.json();
      if (!r.ok) throw new Error(body.Message || ('HTTP ' + r.status));
      session = body.id; kiosk.session = session;
      $('start').hidden = true; $('cancel').hidden = false;
    } catch (e) { showResult(false, String(e.message || e)); }
  }
  async function cancelAgent() {
    if (session) await fetch(cfg.sessions + '/' + encodeURIComponent(session), { method: 'DELETE' });
  }

  // ---- browser mode ----
  const cam = $('camera');
  let stopBrowser = false;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  function claims(tok) {
    const p = tok.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(p + '==='.slice((p.length + 3) % 4)));
  }
  async function startCamera() {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    cam.srcObject = stream; await cam.play();
    const draw = () => {
      if (cam.videoWidth) {
        if (video.width !== cam.videoWidth) { video.width = cam.videoWidth; video.height = cam.videoHeight; }
        vctx.drawImage(cam, 0, 0); kiosk.frames++;
        $('frames').textContent = kiosk.frames;
      }
      requestAnimationFrame(draw);
    };
    requestAnimationFrame(draw);
  }
  // sample returns the current camera frame mirrored (selfie view, as BWS
  // UI uploads it) as a JPEG data URL.
  function sample() {
    const c = document.createElement('canvas'); c.width = cam.videoWidth; c.height = cam.videoHeight;
    const x = c.getContext('2d'); x.translate(c.width, 0); x.scale(-1, 1); x.drawImage(cam, 0, 0);
    return c.toDataURL('image/jpeg', 0.92);
  }
  async function bws(path, tok, opts) {
    const r = await fetch(cfg.bws + path, Object.assign({ headers: { Authorization: 'Bearer ' + tok } }, opts || {}));
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.Message || ('HTTP ' + r.status));
    return body;
  }
  async function startBrowser() {
    resetResult(); setState('starting'); stopBrowser = false;
    $('start').hidden = true; $('cancel').hidden = false;
    try {
      const tok = await token();
      const c = claims(tok);
      const maxTries = (c.task & 0x0F) || 1;
      const challenge = c.challenge ? JSON.parse(c.challenge) : null;
      const threshold = /Mobi|Android/i.test(navigator.userAgent) ? 50 : 25;
      let res = null;
      for (let tr = 0; tr < maxTries; tr++) {
        const tags = challenge ? ['any'].concat(challenge[tr]) : ['any', 'any'];
        let ref = null, uploads = 0;
        const pending = [];
        for (let k = 0; k < tags.length; k++) {
          setState('prompting'); prompt(tags[k]); progress(k, tags.length, tr + 1, maxTries);
          await sleep(1000); // BWS UI: 1 s pause after each prompt
          const since = Date.now();
          for (;;) {
            if (stopBrowser) throw new Error('Canceled');
            if (Date.now() - since > 30000) throw new Error('NoMovement');
            const img = KioskMotion.image(cam, cam.videoWidth, cam.videoHeight, true);
            kiosk.motion = ref ? KioskMotion.percent(ref, img) : 0;
            if (!ref || kiosk.motion > threshold) {
              if (++uploads > 20) throw new Error('TooManyUploads');
              const body = sample();
              // Uploads run in parallel, as BWS UI does; index orders them.
              pending.push(bws('upload?tag=' + tags[k] + '&index=' + k, tok, { method: 'POST', body, headers: { Authorization: 'Bearer ' + tok, 'Content-Type': 'text/plain' } }));
              ref = img;
              break;
            }
            await sleep(50); // ~20 fps
          }
        }
        progress(tags.length, tags.length, tr + 1, maxTries);
        const ups = await Promise.all(pending);
        const bad = ups.find(u => !u.Accepted);
        if (bad) { res = { Success: false, Error: bad.Error }; continue; }
        setState('performing'); say(T.working); $('arrow').textContent = '';
        res = await bws(cfg.task, tok);
        if (res.Success || res.Error === 'NoTemplateAvailable') break;
      }
      showResult(!!(res && res.Success), res && res.Error);
    } catch (e) { showResult(false, String(e.message || e)); }
  }

  $('start').addEventListener('click', () => (cfg.mode === 'browser' ? startBrowser() : startAgent()));
  $('cancel').addEventListener('click', () => { stopBrowser = true; cancelAgent(); });
  setState('idle');
  if (cfg.mode === 'browser') {
    say(T.ready);
    startCamera().catch(() => showResult(false, 'camera'));
  } else {
    connect();
  }
})();

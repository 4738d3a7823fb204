// BWS UI's motion trigger, the same function as agent/session/motion.go
// (MotionPercent): green channel of the central 3/4 scaled to 160 px high,
// a centred W/4 × 3H/8 template of the reference searched over ±W/4 × ±H/4,
// movement % = |best shift| / |largest shift| × 100; coarse-to-fine.
'use strict';
window.KioskMotion = (() => {
  const H = 160;
  let canvas = null;
  // image(source, w, h, mirror) → {pix: Uint8Array, w, h}
  function image(src, sw, sh, mirror) {
    const cw = sw - 2 * Math.floor(sw / 8), ch = sh - 2 * Math.floor(sh / 8);
    const w = Math.max(8, Math.round(cw * H / ch));
    if (!canvas) canvas = document.createElement('canvas');
    canvas.width = w; canvas.height = H;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.save();
    if (mirror) { ctx.translate(w, 0); ctx.scale(-1, 1); }
    ctx.drawImage(src, Math.floor(sw / 8), Math.floor(sh / 8), cw, ch, 0, 0, w, H);
    ctx.restore();
    const d = ctx.getImageData(0, 0, w, H).data;
    const pix = new Uint8Array(w * H);
    for (let i = 0; i < pix.length; i++) pix[i] = d[4 * i + 1];
    return { pix, w, h: H };
  }
  function percent(ref, cur) {
    if (!ref || !cur || ref.w !== cur.w || ref.h !== cur.h) return 0;
    const w = ref.w, h = ref.h, tw = Math.floor(w / 4), th = Math.floor(3 * h / 8);
    const x0 = Math.floor((w - tw) / 2), y0 = Math.floor((h - th) / 2);
    const mx = Math.min(Math.floor(w / 4), x0, w - x0 - tw), my = Math.min(Math.floor(h / 4), y0, h - y0 - th);
    const r = ref.pix, c = cur.pix;
    const sad = (dx, dy, step) => {
      let s = 0;
      for (let y = 0; y < th; y += step) {
        const ro = (y0 + y) * w + x0, co = (y0 + y + dy) * w + x0 + dx;
        for (let x = 0; x < tw; x += step) { const d = r[ro + x] - c[co + x]; s += d < 0 ? -d : d; }
      }
      return s;
    };
    let best = Infinity, bx = 0, by = 0;
    const better = (s, dx, dy) => s < best || (s === best && dx * dx + dy * dy < bx * bx + by * by);
    for (let dy = -Math.trunc(my / 2) * 2; dy <= my; dy += 2)
      for (let dx = -Math.trunc(mx / 2) * 2; dx <= mx; dx += 2) { const s = sad(dx, dy, 2); if (better(s, dx, dy)) { best = s; bx = dx; by = dy; } }
    const cx = bx, cy = by; best = Infinity;
    for (let dy = Math.max(-my, cy - 2); dy <= Math.min(my, cy + 2); dy++)
      for (let dx = Math.max(-mx, cx - 2); dx <= Math.min(mx, cx + 2); dx++) { const s = sad(dx, dy, 1); if (better(s, dx, dy)) { best = s; bx = dx; by = dy; } }
    if (mx === 0 && my === 0) return 0;
    return 100 * Math.hypot(bx, by) / Math.hypot(mx, my);
  }
  return { image, percent };
})();

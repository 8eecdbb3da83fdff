/* Model Collapse, executable: explorers and self-check questions that run in the page.
 *
 * No kernel, no server, no CDN: this file is served from the built site (_config.yml,
 * html_js_files) and fills every <div class="mc-explorer" data-kind=... data-params=...>
 * and every <div class="mc-quiz" data-quiz=...> that collapse_utils.explorers emits.
 *
 * The simulations and their exact theory are plain functions, separate from the drawing,
 * and the file is a UMD module: `node` loads the same code (tests/test_explorers.py), and
 * checks it against collapse_utils' theory and simulations ("one truth").
 */
(function (root, factory) {
  'use strict';
  if (typeof module === 'object' && module.exports) {
    module.exports = factory();
  } else {
    root.CollapseExplorers = factory();
    if (typeof document !== 'undefined') {
      if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', function () { root.CollapseExplorers.init(document); });
      } else {
        root.CollapseExplorers.init(document);
      }
    }
  }
}(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  // =========================================================================== random numbers
  /** A seeded generator (sfc32): uniform(), normal(), int(n), chi2(df). */
  function makeRng(seed) {
    let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = (seed >>> 0) ^ 0xdeadbeef;
    function uniform() {
      a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
      let t = (a + b) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      d = (d + 1) | 0;
      t = (t + d) | 0;
      c = (c + t) | 0;
      return (t >>> 0) / 4294967296;
    }
    for (let i = 0; i < 20; i++) uniform();
    let spare = null;
    function normal() {   // Marsaglia's polar method
      if (spare !== null) { const s = spare; spare = null; return s; }
      let u, v, s;
      do { u = 2 * uniform() - 1; v = 2 * uniform() - 1; s = u * u + v * v; } while (s >= 1 || s === 0);
      const f = Math.sqrt(-2 * Math.log(s) / s);
      spare = v * f;
      return u * f;
    }
    function gamma(k) {   // Marsaglia and Tsang (2000); k < 1 by Gamma(k + 1) U^(1/k)
      if (k < 1) return gamma(k + 1) * Math.pow(uniform() || 1e-300, 1 / k);
      const d3 = k - 1 / 3, c3 = 1 / Math.sqrt(9 * d3);
      for (;;) {
        let x, v;
        do { x = normal(); v = 1 + c3 * x; } while (v <= 0);
        v = v * v * v;
        const u = uniform();
        if (u < 1 - 0.0331 * x * x * x * x) return d3 * v;
        if (Math.log(u) < 0.5 * x * x + d3 * (1 - v + Math.log(v))) return d3 * v;
      }
    }
    return {
      uniform: uniform,
      normal: normal,
      int: function (n) { return Math.floor(uniform() * n); },
      chi2: function (df) { return 2 * gamma(df / 2); },
    };
  }

  // =========================================================================== special functions
  const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7];

  function lgamma(x) {
    if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
    x -= 1;
    let s = LANCZOS[0];
    const t = x + 7.5;
    for (let i = 1; i < 9; i++) s += LANCZOS[i] / (x + i);
    return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s);
  }

  function digamma(x) {
    let r = 0;
    while (x < 6) { r -= 1 / x; x += 1; }
    const f = 1 / (x * x);
    return r + Math.log(x) - 0.5 / x - f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))));
  }

  /** log c_M, c_M = E[sqrt(chi2_{M-1} / (M-1))] (collapse_utils.gaussian.theory.log_c_m). */
  function logCM(M) {
    const x = (M - 1) / 2;
    if (x > 50) return -1 / (8 * x) + 1 / (192 * x * x * x) - 1 / (640 * Math.pow(x, 5));
    return lgamma(x + 0.5) - lgamma(x) - 0.5 * Math.log(x);
  }

  // =========================================================================== discrete
  /** Zipf(K, s): p(k) proportional to k^-s, k = 1..K. */
  function zipf(K, s) {
    const p = new Float64Array(K);
    let total = 0;
    for (let k = 0; k < K; k++) { p[k] = Math.pow(k + 1, -s); total += p[k]; }
    for (let k = 0; k < K; k++) p[k] /= total;
    return p;
  }

  /** Exact survival P(state of probability q present after n fits), n = 0..fits, for each q
   * (collapse_utils.discrete.theory.survival_probability).  An object that extends its
   * curves on demand: `upTo(n)` (a two-state Wright-Fisher chain per distinct q, the
   * binomial rows cut where their mass is below 1e-16). */
  function DiscreteTheory(q, M) {
    const lf = new Float64Array(M + 1);
    for (let j = 1; j <= M; j++) lf[j] = lf[j - 1] + Math.log(j);
    function row(p, lo, hi) {   // Binom(M, p) pmf on lo..hi
      const out = new Float64Array(hi - lo + 1);
      const lp = Math.log(p), lq = Math.log(1 - p);
      for (let j = lo; j <= hi; j++) out[j - lo] = Math.exp(lf[M] - lf[j] - lf[M - j] + j * lp + (M - j) * lq);
      return out;
    }
    const rows = [];   // row i of the Wright-Fisher matrix: [lo, values]
    for (let i = 0; i <= M; i++) {
      if (i === 0 || i === M) { rows.push([i, new Float64Array([1])]); continue; }
      const p = i / M, sd = Math.sqrt(M * p * (1 - p));
      const lo = Math.max(0, Math.floor(M * p - 9 * sd - 5)), hi = Math.min(M, Math.ceil(M * p + 9 * sd + 5));
      rows.push([lo, row(p, lo, hi)]);
    }
    const distinct = Array.from(new Set(Array.from(q)));
    const dists = distinct.map(function (v) {
      if (v <= 0 || v >= 1) { const d = new Float64Array(M + 1); d[v <= 0 ? 0 : M] = 1; return d; }
      return row(v, 0, M);
    });
    const curves = distinct.map(function (v) { return [v > 0 ? 1 : 0]; });   // n = 0: q itself
    let fits = 0;
    function advance() {
      fits += 1;
      for (let s = 0; s < distinct.length; s++) {
        if (fits > 1) {
          const d = dists[s], nd = new Float64Array(M + 1);
          for (let i = 0; i <= M; i++) {
            const w = d[i];
            if (w < 1e-300) continue;
            const lo = rows[i][0], r = rows[i][1];
            for (let j = 0; j < r.length; j++) nd[lo + j] += w * r[j];
          }
          dists[s] = nd;
        }
        curves[s].push(1 - dists[s][0]);
      }
    }
    const index = Array.from(q).map(function (v) { return distinct.indexOf(v); });
    return {
      upTo: function (n) { while (fits < n) advance(); return this; },
      /** survival of state k after n fits */
      survival: function (k, n) { this.upTo(n); return curves[index[k]][n]; },
      /** E[number of states present after n fits] */
      support: function (n) {
        this.upTo(n);
        let s = 0;
        for (let k = 0; k < index.length; k++) s += curves[index[k]][n];
        return s;
      },
    };
  }

  /** Chains of the exact refit of a discrete distribution: each generation counts M draws of
   * the previous generation's frequencies (collapse_utils.discrete, regime replace).
   * Generation 0 holds M draws of p0 (the real data D_0), so generation g is fit g + 1. */
  function DiscreteSim(o) {
    const K = o.K, M = o.M, chains = o.chains, rng = makeRng(o.seed || 1);
    const p0 = zipf(K, o.zipf_exponent);
    const labels = new Int32Array(chains * M), spare = new Int32Array(M);
    const counts = new Int32Array(chains * K);
    const sim = {
      p0: p0, K: K, M: M, chains: chains, generation: -1, generations: o.generations,
      survival: [],      // survival[g][k]: fraction of chains holding state k
      support: [],       // support[g]: mean number of states present
      supportOf: [],     // supportOf[g][c]: states present in chain c (the first few chains)
      absorbed: [],      // fraction of chains with one state left
      shown: Math.min(chains, o.shown || 24),
      counts: counts,
    };
    const cum = new Float64Array(K);
    let t = 0;
    for (let k = 0; k < K; k++) { t += p0[k]; cum[k] = t; }
    sim.step = function () {
      if (sim.generation >= sim.generations) return false;
      counts.fill(0);
      for (let c = 0; c < chains; c++) {
        const lab = labels.subarray(c * M, (c + 1) * M);
        if (sim.generation < 0) {
          for (let j = 0; j < M; j++) {
            const u = rng.uniform() * t;
            let k = 0;
            while (k < K - 1 && cum[k] <= u) k++;
            lab[j] = k;
          }
        } else {   // M draws of the empirical frequencies: resample the labels
          for (let j = 0; j < M; j++) spare[j] = lab[rng.int(M)];
          lab.set(spare);
        }
        for (let j = 0; j < M; j++) counts[c * K + lab[j]]++;
      }
      sim.generation += 1;
      const alive = new Float64Array(K), per = new Int32Array(sim.shown);
      let total = 0, absorbed = 0;
      for (let c = 0; c < chains; c++) {
        let n = 0;
        for (let k = 0; k < K; k++) if (counts[c * K + k] > 0) { alive[k] += 1; n++; }
        total += n;
        if (n === 1) absorbed++;
        if (c < sim.shown) per[c] = n;
      }
      for (let k = 0; k < K; k++) alive[k] /= chains;
      sim.survival.push(alive);
      sim.support.push(total / chains);
      sim.supportOf.push(per);
      sim.absorbed.push(absorbed / chains);
      return true;
    };
    sim.run = function () { while (sim.step()) { /* all generations */ } return sim; };
    return sim;
  }

  // =========================================================================== Gaussian
  /** Exact 1-D moments after n fits of M samples, N(0, 1) real data, regime replace
   * (collapse_utils.gaussian.theory.theory_1d): E sigma, E sigma^2, exp(E log sigma^2 / 2). */
  function gaussianTheory(n, M, estimator) {
    const x = (M - 1) / 2, mle = estimator === 'mle';
    const r = (M - 1) / M;
    const eSqrt = Math.exp(logCM(M)) * (mle ? Math.sqrt(r) : 1);
    const eLog = digamma(x) + (mle ? Math.log(2 / M) : -Math.log(x));
    return {
      sigma: Math.pow(eSqrt, n),
      sigma2: mle ? Math.pow(r, n) : 1,
      typical: Math.exp(0.5 * n * eLog),
      w2: null,
    };
  }

  /** E W2^2 after n fits (collapse_utils.gaussian.theory.theory_1d["w2_squared"]), constant M. */
  function gaussianW2(n, M, estimator) {
    const r = estimator === 'mle' ? (M - 1) / M : 1;
    let me = 0;
    for (let k = 0; k < n; k++) me += Math.pow(r, k) / M;
    const t = gaussianTheory(n, M, estimator);
    return me + t.sigma2 - 2 * t.sigma + 1;
  }

  /** Largest-remainder split of m by weights (collapse_utils.regimes.split_counts). */
  function splitCounts(m, w) {
    const sum = w.reduce(function (a, b) { return a + b; }, 0);
    const raw = w.map(function (v) { return m * v / sum; });
    const counts = raw.map(Math.floor);
    let left = m - counts.reduce(function (a, b) { return a + b; }, 0);
    const order = raw.map(function (v, i) { return [-(v - counts[i]), i]; })
      .sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    for (let i = 0; left > 0; i++, left--) counts[order[i][1]]++;
    return counts;
  }

  /** Chains of the 1-D Gaussian refit (collapse_utils.gaussian.simulate): generation 0 fits M
   * real N(0, 1) samples; each later generation fits a training set made by the regime:
   * "replace" (M fresh samples), "accumulate" (all data so far) or "mix" (alpha M fresh,
   * beta M of the previous training set, gamma M of the real data, without replacement).
   * Estimator "unbiased" (ddof 1) or "mle" (ddof 0).  Replace and accumulate draw the
   * fresh samples' sufficient statistics (exact in distribution); mix draws the points. */
  function GaussianSim(o) {
    const M = o.M, chains = o.chains, rng = makeRng(o.seed || 1), G = o.generations;
    const mle = o.estimator === 'mle', regime = o.regime || 'replace';
    let w = [1, 0, 0];
    if (regime === 'mix') w = [o.alpha, o.beta, o.gamma];
    if (regime === 'keep-real') w = [1 - o.real_fraction, 0, o.real_fraction];
    const points = regime === 'mix' || regime === 'keep-real';
    const split = points ? splitCounts(M, w) : [M, 0, 0];
    const mu = new Float64Array(chains), sd = new Float64Array(chains);
    const poolN = new Float64Array(chains), poolMean = new Float64Array(chains), poolM2 = new Float64Array(chains);
    const real = points ? new Float64Array(chains * M) : null;
    let prev = points ? new Float64Array(chains * M) : null, next = points ? new Float64Array(chains * M) : null;
    const idx = new Int32Array(M);
    for (let j = 0; j < M; j++) idx[j] = j;   // stays a permutation: a partial shuffle of any permutation samples uniformly
    const sim = {
      M: M, chains: chains, generation: -1, generations: G, estimator: o.estimator, regime: regime,
      split: split, mu: mu, sd: sd,
      sigma: [],   // sigma[g]: Float64Array over chains
      mean: [], median: [], w2: [],
    };
    function fresh(c, m) {   // sufficient statistics of m fresh draws of chain c's model: [mean, sum of squares]
      const mean = mu[c] + sd[c] * rng.normal() / Math.sqrt(m);
      const ss = m > 1 ? sd[c] * sd[c] * rng.chi2(m - 1) : 0;
      return [mean, ss];
    }
    function pick(src, c, k, out, at) {   // k of chain c's M points of src, without replacement
      for (let j = 0; j < k; j++) {
        const r = j + rng.int(M - j), tmp = idx[j];
        idx[j] = idx[r]; idx[r] = tmp;
        out[c * M + at + j] = src[c * M + idx[j]];
      }
    }
    sim.step = function () {
      if (sim.generation >= G) return false;
      const first = sim.generation < 0;
      for (let c = 0; c < chains; c++) {
        let n, mean, ss;
        if (points) {
          const base = c * M;
          if (first) {
            for (let j = 0; j < M; j++) real[base + j] = rng.normal();
            next.set(real.subarray(base, base + M), base);
          } else {
            for (let j = 0; j < split[0]; j++) next[base + j] = mu[c] + sd[c] * rng.normal();
            pick(prev, c, split[1], next, split[0]);
            pick(real, c, split[2], next, split[0] + split[1]);
          }
          let s = 0, s2 = 0;
          for (let j = 0; j < M; j++) s += next[base + j];
          mean = s / M;
          for (let j = 0; j < M; j++) { const e = next[base + j] - mean; s2 += e * e; }
          n = M; ss = s2;
        } else {
          if (first) { mu[c] = 0; sd[c] = 1; }
          const f = fresh(c, M);
          if (regime === 'accumulate' && !first) {   // Chan et al.'s merge of the pool and the new draws
            const na = poolN[c], nb = M, delta = f[0] - poolMean[c];
            n = na + nb;
            mean = poolMean[c] + delta * nb / n;
            ss = poolM2[c] + f[1] + delta * delta * na * nb / n;
          } else {
            n = M; mean = f[0]; ss = f[1];
          }
          poolN[c] = n; poolMean[c] = mean; poolM2[c] = ss;
        }
        mu[c] = mean;
        sd[c] = Math.sqrt(ss / (mle ? n : n - 1));
      }
      if (points) { const t = prev; prev = next; next = t; }
      sim.generation += 1;
      const s = Float64Array.from(sd);
      let total = 0, w2 = 0;
      for (let c = 0; c < chains; c++) { total += s[c]; w2 += mu[c] * mu[c] + (s[c] - 1) * (s[c] - 1); }
      sim.sigma.push(s);
      sim.mean.push(total / chains);
      sim.median.push(median(s));
      sim.w2.push(w2 / chains);
      return true;
    };
    sim.run = function () { while (sim.step()) { /* all generations */ } return sim; };
    return sim;
  }

  function median(values) {
    const s = Float64Array.from(values).sort();
    const n = s.length;
    return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  }

  // =========================================================================== KDE
  /** h = c s for the data-driven rules (collapse_utils.kde.simulate.rule_factor). */
  function ruleFactor(rule, n) {
    return rule === 'scott' ? Math.pow(n, -0.2) : Math.pow(3 * n / 4, -0.2);
  }

  /** E[V] after `fits` fits, V = biased variance of the centres + h^2, N(0, 1) real data
   * (collapse_utils.kde.theory.expected_variance). */
  function kdeTheory(fits, rule, M, h) {
    if (rule === 'fixed') return M * h * h + (1 - M * h * h) * Math.pow((M - 1) / M, fits);
    const c = ruleFactor(rule, M);
    return Math.pow((M - 1) / M + c * c, fits);
  }

  /** Chains of a Gaussian KDE refitted on its own samples (the smoothed bootstrap,
   * collapse_utils.kde.simulate): generation 0 is the KDE of M real N(0, 1) points. */
  function KdeSim(o) {
    const M = o.M, chains = o.chains, rng = makeRng(o.seed || 1), G = o.generations;
    let centres = new Float64Array(chains * M), spare = new Float64Array(chains * M);
    const h = new Float64Array(chains);
    const sim = { M: M, chains: chains, generation: -1, generations: G, rule: o.rule, h: h,
      centres: function (c) { return centres.subarray(c * M, (c + 1) * M); },
      variance: [], mean: [], bandwidth: [] };
    sim.step = function () {
      if (sim.generation >= G) return false;
      const first = sim.generation < 0;
      const V = new Float64Array(chains);
      let hs = 0;
      for (let c = 0; c < chains; c++) {
        const base = c * M;
        for (let j = 0; j < M; j++) {
          spare[base + j] = first ? rng.normal() : centres[base + rng.int(M)] + h[c] * rng.normal();
        }
        let s = 0, s2 = 0;
        for (let j = 0; j < M; j++) s += spare[base + j];
        const m = s / M;
        for (let j = 0; j < M; j++) { const e = spare[base + j] - m; s2 += e * e; }
        h[c] = o.rule === 'fixed' ? o.h : ruleFactor(o.rule, M) * Math.sqrt(s2 / (M - 1));
        V[c] = s2 / M + h[c] * h[c];
        hs += h[c];
      }
      const t = centres; centres = spare; spare = t;
      sim.generation += 1;
      let tv = 0;
      for (let c = 0; c < chains; c++) tv += V[c];
      sim.variance.push(V);
      sim.mean.push(tv / chains);
      sim.bandwidth.push(hs / chains);
      return true;
    };
    sim.run = function () { while (sim.step()) { /* all generations */ } return sim; };
    return sim;
  }

  const api = {
    makeRng: makeRng, lgamma: lgamma, digamma: digamma, logCM: logCM, median: median,
    zipf: zipf, DiscreteTheory: DiscreteTheory, DiscreteSim: DiscreteSim,
    gaussianTheory: gaussianTheory, gaussianW2: gaussianW2, splitCounts: splitCounts, GaussianSim: GaussianSim,
    ruleFactor: ruleFactor, kdeTheory: kdeTheory, KdeSim: KdeSim,
    explorers: {}, init: function () { /* the page part below replaces this */ },
  };
  if (typeof document === 'undefined') return api;

  // =========================================================================== the page
  const FRAMES = 110;   // an animation reaches the last generation in about two seconds
  const PALETTE = { blue: '#1f77b4', orange: '#ff7f0e', green: '#2ca02c', red: '#d62728',
    purple: '#9467bd', grey: '#8c8c8c' };

  function fmt(v, d) {
    if (!isFinite(v)) return String(v);
    if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(2);
    return v.toFixed(d === undefined ? 3 : d);
  }
  function h(tag, attrs, children) {
    const el = document.createElement(tag);
    for (const k in (attrs || {})) {
      if (k === 'text') el.textContent = attrs[k];
      else if (k === 'html') el.innerHTML = attrs[k];
      else el.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }

  // ------------------------------------------------------------------------- plotting on a canvas
  function niceTicks(lo, hi, n) {
    const span = hi - lo, step0 = Math.pow(10, Math.floor(Math.log10(span / n)));
    const err = span / n / step0;
    const step = step0 * (err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }
  function logTicks(lo, hi) {
    const out = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      [1, 2, 5].forEach(function (m) {
        const v = m * Math.pow(10, e);
        if (v >= lo * 0.999 && v <= hi * 1.001 && (m === 1 || Math.log10(hi / lo) < 2.5)) out.push(v);
      });
    }
    return out;
  }
  function tickLabel(v) {
    if (v === 0) return '0';
    if (Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3) return v.toExponential(0).replace('e+', 'e');
    return String(+v.toPrecision(3));
  }

  /** A panel: axes, ticks and labels in `box`; returns the coordinate maps. */
  function panel(ctx, box, o, ink) {
    const L = box.x + 50, R = box.x + box.w - 16, T = box.y + 22, B = box.y + box.h - 34;
    const fy = o.logy ? Math.log10 : function (v) { return v; };
    const y0 = fy(o.y[0]), y1 = fy(o.y[1]);
    const P = {
      L: L, R: R, T: T, B: B, logy: !!o.logy,
      X: function (v) { return L + (v - o.x[0]) / (o.x[1] - o.x[0]) * (R - L); },
      Y: function (v) {
        if (o.logy && !(v > 0)) return B + 4;
        return Math.max(T - 4, Math.min(B + 4, B - (fy(v) - y0) / (y1 - y0) * (B - T)));
      },
    };
    ctx.save();
    ctx.font = '12px system-ui, sans-serif';
    ctx.strokeStyle = ink; ctx.fillStyle = ink; ctx.globalAlpha = 1; ctx.lineWidth = 1;
    ctx.globalAlpha = 0.12;
    const yt = o.logy ? logTicks(o.y[0], o.y[1]) : niceTicks(o.y[0], o.y[1], 4);
    const xt = o.xticks || niceTicks(o.x[0], o.x[1], Math.max(3, Math.floor((R - L) / 70)));
    yt.forEach(function (v) { const y = P.Y(v); ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(R, y); ctx.stroke(); });
    ctx.globalAlpha = 0.8;
    ctx.strokeRect(L, T, R - L, B - T);
    ctx.globalAlpha = 1;
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    yt.forEach(function (v) { ctx.fillText(tickLabel(v), L - 5, P.Y(v)); });
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    xt.forEach(function (v) {
      const lab = o.xlabels ? o.xlabels(v) : tickLabel(v);
      if (lab !== '') ctx.fillText(lab, P.X(v), B + 4);
    });
    ctx.fillText(o.xlabel || '', (L + R) / 2, B + 18);
    ctx.textAlign = 'left'; ctx.textBaseline = 'alphabetic';
    let size = 12.5, title = o.title || '';
    ctx.font = '600 ' + size + 'px system-ui, sans-serif';
    while (size > 10 && ctx.measureText(title).width > R - box.x - 4) {   // a phone: smaller, then cut
      size -= 0.5; ctx.font = '600 ' + size + 'px system-ui, sans-serif';
    }
    while (title.length > 8 && ctx.measureText(title).width > R - box.x - 4) title = title.slice(0, -2) + '\u2026';
    ctx.fillText(title, Math.min(L, box.x + 4 + Math.max(0, (R - box.x - 4) - ctx.measureText(title).width)), T - 7);
    ctx.restore();
    return P;
  }
  function line(ctx, P, xs, ys, style) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(P.L, P.T - 1, P.R - P.L, P.B - P.T + 2);
    ctx.clip();
    ctx.strokeStyle = style.color; ctx.lineWidth = style.width || 1.5;
    ctx.globalAlpha = style.alpha === undefined ? 1 : style.alpha;
    ctx.setLineDash(style.dash || []);
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < xs.length; i++) {
      const y = ys[i];
      if (!isFinite(y) || (P.logy && !(y > 0))) { pen = false; continue; }
      const px = P.X(xs[i]), py = P.Y(y);
      if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      pen = true;
    }
    ctx.stroke();
    ctx.restore();
  }
  function legend(ctx, P, items, ink) {
    ctx.save();
    ctx.font = '11.5px system-ui, sans-serif';
    let y = P.T + 12;
    const width = Math.max.apply(null, items.map(function (it) { return ctx.measureText(it[0]).width; })) + 30;
    const x = P.R - width - 4;
    ctx.globalAlpha = 0.85;
    ctx.fillStyle = ctx.canvas.dataset.bg || '#fff';
    ctx.fillRect(x - 4, P.T + 3, width + 6, items.length * 15 + 4);
    ctx.globalAlpha = 1;
    items.forEach(function (it) {
      ctx.strokeStyle = it[1]; ctx.lineWidth = 2; ctx.setLineDash(it[2] || []);
      ctx.beginPath(); ctx.moveTo(x, y - 4); ctx.lineTo(x + 20, y - 4); ctx.stroke();
      ctx.fillStyle = ink; ctx.fillText(it[0], x + 25, y);
      y += 15;
    });
    ctx.restore();
  }
  function range(n) { const a = new Array(n); for (let i = 0; i < n; i++) a[i] = i; return a; }
  function normalPdf(x, m, s) { const z = (x - m) / s; return Math.exp(-0.5 * z * z) / (s * Math.sqrt(2 * Math.PI)); }

  /** Densities of a few fitted models (top panel of the Gaussian and KDE explorers). */
  function densityPanel(ctx, box, ink, title, curves) {
    const xs = range(161).map(function (i) { return -4 + i * 0.05; });
    const P = panel(ctx, box, { x: [-4, 4], y: [0, 1.2], title: title, xlabel: 'x' }, ink);
    line(ctx, P, xs, xs.map(function (x) { return normalPdf(x, 0, 1); }), { color: PALETTE.grey, width: 3, alpha: 0.7 });
    curves.forEach(function (f) { line(ctx, P, xs, xs.map(f), { color: PALETTE.blue, width: 1.2, alpha: 0.55 }); });
    return P;
  }

  // ------------------------------------------------------------------------- the explorers
  const KINDS = {};

  KINDS.discrete = {
    title: 'Discrete resampling: a Zipf law refitted on its own samples',
    panels: 3,
    make: function (v, seed) {
      const sim = DiscreteSim({ K: v.K, zipf_exponent: v.zipf_exponent, M: v.M, generations: v.generations,
        chains: v.chains, seed: seed });
      sim.theory = DiscreteTheory(sim.p0, v.M);
      sim.tracked = [0, Math.max(0, Math.floor(v.K / 2) - 1), v.K - 1].filter(function (k, i, a) { return a.indexOf(k) === i; });
      return sim;
    },
    draw: function (ctx, W, boxes, sim, ink) {
      const K = sim.K, g = sim.generation, th = sim.theory.upTo(g + 1);
      // 1. the probability of each state: p0 and the first chain now
      const lo = Math.min(0.5 / sim.M, sim.p0[K - 1] / 2);
      const P1 = panel(ctx, boxes[0], { x: [0.4, K + 0.6], y: [lo, 1], logy: true,
        title: 'probability of each state: p\u2080 (grey) and chain 1 at generation ' + g,
        xlabel: 'state k (\u00d7: lost from chain 1)',
        xticks: niceTicks(1, K, Math.min(K, 10)).filter(function (v) { return v >= 1 && Number.isInteger(v); }) }, ink);
      const bw = Math.max(2, (P1.R - P1.L) / (K + 1.2) * 0.8);
      for (let k = 0; k < K; k++) {
        const x = P1.X(k + 1), q = sim.counts[k] / sim.M;
        ctx.fillStyle = PALETTE.grey; ctx.globalAlpha = 0.35;
        ctx.fillRect(x - bw / 2, P1.Y(sim.p0[k]), bw, P1.B - P1.Y(sim.p0[k]));
        ctx.globalAlpha = 1;
        if (q > 0) {
          ctx.fillStyle = PALETTE.blue;
          ctx.fillRect(x - bw / 4, P1.Y(q), bw / 2, P1.B - P1.Y(q));
        } else {
          ctx.strokeStyle = PALETTE.red; ctx.lineWidth = 2; ctx.beginPath();
          ctx.moveTo(x - 4, P1.B - 12); ctx.lineTo(x + 4, P1.B - 4); ctx.moveTo(x + 4, P1.B - 12); ctx.lineTo(x - 4, P1.B - 4);
          ctx.stroke();
        }
      }
      line(ctx, P1, [0.4, K + 0.6], [1 / sim.M, 1 / sim.M], { color: PALETTE.red, dash: [5, 4], width: 1.2 });
      ctx.fillStyle = PALETTE.red; ctx.font = '11.5px system-ui, sans-serif';
      ctx.fillText('1/M', P1.R - 28, P1.Y(1 / sim.M) - 4);
      // 2. survival of the tracked states against the exact curve
      const G = sim.generations, gens = range(g + 1);
      const P2 = panel(ctx, boxes[1], { x: [0, G], y: [0, 1], title: 'chains still holding the state: simulation (thin) and exact (thick)',
        xlabel: 'generation' }, ink);
      const colours = [PALETTE.blue, PALETTE.green, PALETTE.red], items = [];
      sim.tracked.forEach(function (k, i) {
        line(ctx, P2, gens, gens.map(function (n) { return th.survival(k, n + 1); }), { color: colours[i], width: 3, alpha: 0.45 });
        line(ctx, P2, gens, gens.map(function (n) { return sim.survival[n][k]; }), { color: colours[i], width: 1.3 });
        items.push(['state ' + (k + 1) + ', p\u2080 = ' + fmt(sim.p0[k], 3), colours[i]]);
      });
      legend(ctx, P2, items, ink);
      // 3. the support of each chain, its mean and the exact expectation
      const P3 = panel(ctx, boxes[2], { x: [0, G], y: [0, K], title: 'states left in each chain', xlabel: 'generation' }, ink);
      for (let c = 0; c < sim.shown; c++) {
        line(ctx, P3, gens, gens.map(function (n) { return sim.supportOf[n][c]; }), { color: PALETTE.blue, width: 1, alpha: 0.18 });
      }
      line(ctx, P3, gens, gens.map(function (n) { return th.support(n + 1); }), { color: PALETTE.red, width: 3, alpha: 0.6 });
      line(ctx, P3, gens, sim.support, { color: PALETTE.blue, width: 1.6 });
      legend(ctx, P3, [['mean over ' + sim.chains + ' chains', PALETTE.blue], ['exact E[states]', PALETTE.red],
        ['single chains', 'rgba(31,119,180,0.4)']], ink);
    },
    stat: function (sim) {
      const g = sim.generation, th = sim.theory, k = sim.K - 1;
      return 'Generation ' + g + ' (' + (g + 1) + ' fits): states left ' + fmt(sim.support[g], 2) +
        ' on average (exact ' + fmt(th.support(g + 1), 2) + '); the rarest state is held by ' +
        fmt(100 * sim.survival[g][k], 1) + '% of chains (exact ' + fmt(100 * th.survival(k, g + 1), 1) + '%); ' +
        fmt(100 * sim.absorbed[g], 1) + '% of chains hold a single state.';
    },
    describe: 'Top: the starting probabilities and one chain\u2019s current frequencies (log scale). ' +
      'Middle: the share of chains that still hold the most common, a middle and the rarest state, with the exact survival curve. ' +
      'Bottom: how many states each chain still has, their mean and its exact expectation.',
  };

  function gaussianKind(title, mixing) {
    return {
      title: title,
      panels: 2,
      make: function (v, seed) {
        const o = { M: v.M, generations: v.generations, chains: v.chains, estimator: v.estimator || 'unbiased', seed: seed };
        if (mixing) { o.regime = 'mix'; o.alpha = v.alpha; o.beta = v.beta; o.gamma = v.gamma; }
        else { o.regime = v.regime; o.real_fraction = v.real_fraction; }
        const sim = GaussianSim(o);
        sim.replaceLike = mixing ? v.alpha === 1 : v.regime === 'replace' || (v.regime === 'keep-real' && !(v.real_fraction > 0));
        return sim;
      },
      draw: function (ctx, W, boxes, sim, ink) {
        const g = sim.generation, shown = Math.min(sim.chains, 14);
        const curves = [];
        for (let c = 0; c < shown; c++) {
          const m = sim.mu[c], s = sim.sd[c];
          curves.push(function (x) { return s > 1e-9 ? normalPdf(x, m, s) : NaN; });
        }
        densityPanel(ctx, boxes[0], ink, 'fitted Gaussians of ' + shown + ' chains at generation ' + g + ' (grey: the original)', curves);
        const G = sim.generations, gens = range(g + 1);
        let lo = 1;
        for (let n = 0; n <= g; n++) lo = Math.min(lo, sim.median[n]);
        lo = Math.max(1e-4, Math.pow(10, Math.floor(Math.log10(Math.min(lo, 0.5)))));
        const P = panel(ctx, boxes[1], { x: [0, G], y: [lo, 3], logy: true, title: 'fitted \u03c3 of each chain', xlabel: 'generation' }, ink);
        for (let c = 0; c < Math.min(sim.chains, 30); c++) {
          line(ctx, P, gens, gens.map(function (n) { return sim.sigma[n][c]; }), { color: PALETTE.blue, width: 1, alpha: 0.16 });
        }
        const items = [['mean \u03c3 over ' + sim.chains + ' chains', PALETTE.blue], ['median \u03c3', PALETTE.orange]];
        const all = range(G + 1), T = all.map(function (n) { return gaussianTheory(n + 1, sim.M, sim.estimator); });
        const tag = sim.replaceLike ? '' : ' (replace)';
        line(ctx, P, all, T.map(function (t) { return t.sigma; }), { color: PALETTE.red, width: 2.5, alpha: sim.replaceLike ? 0.75 : 0.35, dash: [7, 4] });
        line(ctx, P, all, T.map(function (t) { return t.typical; }), { color: PALETTE.purple, width: 2, alpha: sim.replaceLike ? 0.75 : 0.35, dash: [2, 3] });
        line(ctx, P, all, T.map(function (t) { return Math.sqrt(t.sigma2); }), { color: PALETTE.grey, width: 2, alpha: sim.replaceLike ? 0.75 : 0.35, dash: [2, 3] });
        items.push(['exact E \u03c3\u2099' + tag, PALETTE.red, [7, 4]], ['exp(E log \u03c3\u2099\u00b2 / 2)' + tag, PALETTE.purple, [2, 3]],
          ['\u221a(E \u03c3\u2099\u00b2)' + tag, PALETTE.grey, [2, 3]]);
        line(ctx, P, gens, sim.mean, { color: PALETTE.blue, width: 2 });
        line(ctx, P, gens, sim.median, { color: PALETTE.orange, width: 2 });
        legend(ctx, P, items, ink);
      },
      stat: function (sim) {
        const g = sim.generation, t = gaussianTheory(g + 1, sim.M, sim.estimator);
        let s = 'Generation ' + g + ' (' + (g + 1) + ' fits): mean \u03c3 ' + fmt(sim.mean[g]) + ', median \u03c3 ' +
          fmt(sim.median[g]) + ' over ' + sim.chains + ' chains; mean W\u2082\u00b2 to N(0, 1) ' + fmt(sim.w2[g]) + '. ';
        s += (sim.replaceLike ? 'Exact: ' : 'Under replace it would be: ') + 'E \u03c3\u2099 = ' + fmt(t.sigma) +
          ', E W\u2082\u00b2 = ' + fmt(gaussianW2(g + 1, sim.M, sim.estimator)) + '.';
        if (mixing) s += ' Each training set: ' + sim.split[0] + ' model samples, ' + sim.split[1] + ' previous, ' + sim.split[2] + ' real.';
        return s;
      },
      describe: 'Top: the Gaussians fitted by a few chains at the current generation, against the original N(0, 1). ' +
        'Bottom: every chain\u2019s fitted standard deviation (log scale), the mean and median over chains, and the exact theory of the replace regime.',
    };
  }
  KINDS.gaussian = gaussianKind('The Gaussian refit: fitted \u03c3 over the generations', false);
  KINDS.mixing = gaussianKind('Learning with generational data: p\u1d62\u208a\u2081 = \u03b1 p\u03b8 + \u03b2 p\u1d62 + \u03b3 p\u2080', true);

  KINDS.kde = {
    title: 'A kernel density estimate refitted on its own samples',
    panels: 2,
    make: function (v, seed) {
      return KdeSim({ M: v.M, generations: v.generations, chains: v.chains, rule: v.rule, h: v.h, seed: seed });
    },
    draw: function (ctx, W, boxes, sim, ink) {
      const g = sim.generation, shown = Math.min(sim.chains, 3), curves = [];
      for (let c = 0; c < shown; c++) {
        const cs = sim.centres(c), bw = sim.h[c];
        curves.push(function (x) { let s = 0; for (let j = 0; j < cs.length; j++) s += normalPdf(x, cs[j], bw); return s / cs.length; });
      }
      densityPanel(ctx, boxes[0], ink, 'the KDE of ' + shown + ' chains at generation ' + g + ' (grey: the original)', curves);
      const G = sim.generations, gens = range(g + 1), all = range(G + 1);
      const T = all.map(function (n) { return kdeTheory(n + 1, sim.rule, sim.M, sim.h[0]); });
      let lo = 0.5, hi = 2;
      T.forEach(function (v) { lo = Math.min(lo, v); hi = Math.max(hi, v); });
      for (let n = 0; n <= g; n++) { lo = Math.min(lo, sim.mean[n]); hi = Math.max(hi, sim.mean[n]); }
      lo = Math.pow(10, Math.floor(Math.log10(lo * 0.7))); hi = Math.pow(10, Math.ceil(Math.log10(hi * 1.4)));
      const P = panel(ctx, boxes[1], { x: [0, G], y: [lo, hi], logy: true, title: 'variance of each chain\u2019s KDE', xlabel: 'generation' }, ink);
      for (let c = 0; c < Math.min(sim.chains, 30); c++) {
        line(ctx, P, gens, gens.map(function (n) { return sim.variance[n][c]; }), { color: PALETTE.blue, width: 1, alpha: 0.16 });
      }
      line(ctx, P, all, T, { color: PALETTE.red, width: 2.5, alpha: 0.75, dash: [7, 4] });
      line(ctx, P, gens, sim.mean, { color: PALETTE.blue, width: 2 });
      legend(ctx, P, [['mean over ' + sim.chains + ' chains', PALETTE.blue], ['exact E[V]', PALETTE.red, [7, 4]]], ink);
    },
    stat: function (sim) {
      const g = sim.generation;
      return 'Generation ' + g + ' (' + (g + 1) + ' fits): mean KDE variance ' + fmt(sim.mean[g]) + ' over ' + sim.chains +
        ' chains (exact E[V] = ' + fmt(kdeTheory(g + 1, sim.rule, sim.M, sim.h[0])) + '); mean bandwidth h = ' + fmt(sim.bandwidth[g]) + '.';
    },
    describe: 'Top: the density estimates of a few chains at the current generation, against the original N(0, 1). ' +
      'Bottom: each chain\u2019s KDE variance (log scale), the mean over chains and its exact expectation.',
  };

  // ------------------------------------------------------------------------- controls and animation
  let counter = 0;
  function Explorer(root, kind, spec) {
    const id = 'mc-ex-' + (++counter);
    const values = {}, inputs = {}, outputs = {};
    const fixed = spec.fixed || {};
    const self = { root: root, values: values, seed: fixed.seed || 1, timer: null };
    const controls = h('div', { class: 'mc-ex-controls' });
    function show(c) {
      const v = values[c.name];
      if (outputs[c.name]) outputs[c.name].textContent = c.labels ? c.labels[c.options ? c.options.indexOf(v) : c.values.indexOf(v)] : String(v);
    }
    spec.controls.forEach(function (c) {
      const cid = id + '-' + c.name;
      values[c.name] = c.value;
      let input;
      if (c.choices) {
        input = h('select', { id: cid, name: c.name });
        c.choices.forEach(function (o) { const opt = h('option', { value: o[0], text: o[1] }); if (o[0] === c.value) opt.selected = true; input.appendChild(opt); });
        input.addEventListener('change', function () { values[c.name] = input.value; self.restart(); });
      } else if (c.values) {   // a slider over a list of values
        input = h('input', { id: cid, name: c.name, type: 'range', min: 0, max: c.values.length - 1, step: 1, value: c.values.indexOf(c.value) });
        input.addEventListener('input', function () { values[c.name] = c.values[+input.value]; show(c); self.restart(); });
      } else {
        input = h('input', { id: cid, name: c.name, type: 'range', min: c.min, max: c.max, step: c.step, value: c.value });
        input.addEventListener('input', function () {
          values[c.name] = +input.value;
          if (c.simplex) self.balance(c.name, c.simplex);
          show(c); self.restart();
        });
      }
      inputs[c.name] = input;
      const out = c.choices ? null : h('output', { for: cid, class: 'mc-ex-value' });
      outputs[c.name] = out;
      controls.appendChild(h('div', { class: 'mc-ex-control' }, [
        h('label', { for: cid }, [h('span', { text: c.label }), out]), input]));
      show(c);
    });
    /** Keep the weights of a simplex (alpha, beta, gamma) summing to one: the others share what is left. */
    self.balance = function (name, group) {
      const others = group.filter(function (n) { return n !== name; });
      const left = Math.max(0, 1 - values[name]);
      const had = others.reduce(function (s, n) { return s + values[n]; }, 0);
      const first = had > 0 ? Math.round(20 * left * values[others[0]] / had) / 20 : Math.round(20 * left / 2) / 20;
      values[others[0]] = Math.min(left, first);
      values[others[1]] = Math.max(0, Math.round(100 * (left - values[others[0]])) / 100);
      others.forEach(function (n) {
        inputs[n].value = values[n];
        const c = spec.controls.filter(function (x) { return x.name === n; })[0];
        show(c);
      });
    };
    const play = h('button', { type: 'button', class: 'mc-ex-play', 'aria-pressed': 'true', text: 'Pause' });
    const reset = h('button', { type: 'button', class: 'mc-ex-reset', text: 'Reset' });
    const again = h('button', { type: 'button', class: 'mc-ex-again', text: 'New draw' });
    const canvas = h('canvas', { class: 'mc-ex-canvas', role: 'img', 'aria-label': kind.describe });
    const stat = h('p', { class: 'mc-ex-stat', 'aria-live': 'polite' });
    const fixedText = Object.keys(fixed).filter(function (k) { return k !== 'seed'; })
      .map(function (k) { return k + ' = ' + fixed[k]; }).join(', ');
    root.textContent = '';
    root.appendChild(h('figure', { class: 'mc-ex' }, [
      h('p', { class: 'mc-ex-title', text: spec.title || kind.title }),
      controls,
      h('div', { class: 'mc-ex-buttons' }, [play, again, reset,
        h('span', { class: 'mc-ex-fixed', text: fixedText ? 'fixed: ' + fixedText : '' })]),
      canvas, stat,
      h('figcaption', { text: kind.describe + ' Runs in your browser: no kernel, nothing sent anywhere.' }),
    ]));
    const reduced = typeof window.matchMedia === 'function' && window.matchMedia('(prefers-reduced-motion: reduce)').matches;

    self.draw = function () {
      const sim = self.sim;
      if (!sim || sim.generation < 0) return;
      const W = Math.max(280, Math.round(canvas.clientWidth || root.clientWidth || 600));
      const ph = W < 520 ? 220 : 240, H = ph * kind.panels;
      const ratio = window.devicePixelRatio || 1;
      if (canvas.width !== Math.round(W * ratio) || canvas.height !== Math.round(H * ratio)) {
        canvas.width = Math.round(W * ratio); canvas.height = Math.round(H * ratio);
        canvas.style.height = H + 'px';
      }
      const ctx = canvas.getContext('2d');
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, W, H);
      const style = window.getComputedStyle(root);
      const ink = style.color || '#222';
      canvas.dataset.bg = style.getPropertyValue('--pst-color-background').trim() || '#fff';
      const boxes = range(kind.panels).map(function (i) { return { x: 0, y: i * ph, w: W, h: ph }; });
      kind.draw(ctx, W, boxes, sim, ink);
      stat.textContent = kind.stat(sim);
      root.dataset.generation = String(sim.generation);
    };
    function schedule(fn) {
      if (!document.hidden && typeof window.requestAnimationFrame === 'function') window.requestAnimationFrame(fn);
      else setTimeout(fn, 16);
    }
    self.frame = function (token) {
      if (token !== self.token || !self.playing) return;
      const sim = self.sim;
      const per = reduced ? sim.generations + 1 : Math.max(1, Math.ceil((sim.generations + 1) / FRAMES));
      let more = true;
      for (let i = 0; i < per && more; i++) more = sim.step();
      more = more && sim.generation < sim.generations;
      self.draw();
      if (more) schedule(function () { self.frame(token); });
      else { self.playing = false; play.textContent = 'Replay'; play.setAttribute('aria-pressed', 'false'); root.dataset.state = 'done'; }
    };
    self.restart = function () {
      self.token = {};
      self.sim = kind.make(Object.assign({}, fixed, values), self.seed);
      self.sim.step();
      self.playing = true;
      play.textContent = 'Pause'; play.setAttribute('aria-pressed', 'true');
      root.dataset.state = 'running';
      self.draw();
      const token = self.token;
      schedule(function () { self.frame(token); });
    };
    play.addEventListener('click', function () {
      if (self.playing) {
        self.playing = false; play.textContent = 'Play'; play.setAttribute('aria-pressed', 'false'); root.dataset.state = 'paused';
      } else if (self.sim.generation >= self.sim.generations) {
        self.restart();
      } else {
        self.playing = true; play.textContent = 'Pause'; play.setAttribute('aria-pressed', 'true'); root.dataset.state = 'running';
        const token = self.token = {};
        schedule(function () { self.frame(token); });
      }
    });
    again.addEventListener('click', function () { self.seed += 1; self.restart(); });
    reset.addEventListener('click', function () {
      spec.controls.forEach(function (c) {
        values[c.name] = c.value;
        inputs[c.name].value = c.values ? c.values.indexOf(c.value) : c.value;
        show(c);
      });
      self.seed = fixed.seed || 1;
      self.restart();
    });
    if (typeof ResizeObserver === 'function') {
      let last = 0;
      new ResizeObserver(function () {
        const w = canvas.clientWidth;
        if (w && Math.abs(w - last) > 1) { last = w; if (!self.playing) self.draw(); }
      }).observe(root);
    }
    self.restart();
    return self;
  }

  // ------------------------------------------------------------------------- self-check questions
  function Quiz(root, questions) {
    root.textContent = '';
    const list = h('ol', { class: 'mc-quiz-list' });
    questions.forEach(function (q, qi) {
      const name = 'mc-quiz-' + (++counter);
      const form = h('form', { class: 'mc-quiz-q', novalidate: 'novalidate' });
      const fieldset = h('fieldset', {}, [h('legend', { html: q.text })]);
      const feedback = h('p', { class: 'mc-quiz-feedback', 'aria-live': 'polite' });
      let input;
      if (q.type === 'number') {
        input = h('input', { type: 'text', inputmode: 'decimal', name: name, autocomplete: 'off', 'aria-label': 'your answer' });
        fieldset.appendChild(h('label', { class: 'mc-quiz-number' }, [h('span', { text: 'Your answer' + (q.unit ? ' (' + q.unit + ')' : '') + ': ' }), input]));
      } else {
        q.options.forEach(function (o, i) {
          const rid = name + '-' + i;
          fieldset.appendChild(h('div', { class: 'mc-quiz-option' }, [
            h('input', { type: 'radio', name: name, id: rid, value: String(i) }),
            h('label', { for: rid, html: o.text })]));
        });
      }
      const check = h('button', { type: 'submit', class: 'mc-quiz-check', text: 'Check' });
      fieldset.appendChild(check);
      form.appendChild(fieldset);
      form.appendChild(feedback);
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        let ok, why;
        if (q.type === 'number') {
          const v = parseFloat(String(input.value).replace(',', '.').replace(/[%\s]/g, ''));
          if (!isFinite(v)) { feedback.className = 'mc-quiz-feedback'; feedback.textContent = 'Type a number first.'; return; }
          ok = Math.abs(v - q.answer) <= q.tol;
          why = (ok ? 'Right: ' : 'Not quite: the answer is ' + q.shown + '. ') + (q.why || '');
        } else {
          const picked = form.querySelector('input[type=radio]:checked');
          if (!picked) { feedback.className = 'mc-quiz-feedback'; feedback.textContent = 'Pick an answer first.'; return; }
          const o = q.options[+picked.value];
          ok = !!o.correct;
          why = (ok ? 'Right. ' : 'Not quite. ') + (o.why || '');
        }
        feedback.className = 'mc-quiz-feedback ' + (ok ? 'mc-quiz-right' : 'mc-quiz-wrong');
        feedback.innerHTML = why;
        form.dataset.answered = ok ? 'right' : 'wrong';
      });
      list.appendChild(h('li', {}, [form]));
    });
    root.appendChild(list);
    root.dataset.ready = 'true';
  }

  api.init = function (doc) {
    Array.prototype.forEach.call(doc.querySelectorAll('.mc-explorer[data-kind]'), function (el) {
      if (el.dataset.ready) return;
      el.dataset.ready = 'true';
      const kind = KINDS[el.dataset.kind];
      if (!kind) { el.textContent = 'Unknown explorer: ' + el.dataset.kind; return; }
      api.explorers[el.id || ('explorer-' + el.dataset.kind)] = Explorer(el, kind, JSON.parse(el.dataset.params));
    });
    Array.prototype.forEach.call(doc.querySelectorAll('.mc-quiz[data-quiz]'), function (el) {
      if (el.dataset.ready) return;
      Quiz(el, JSON.parse(el.dataset.quiz));
    });
  };
  api.KINDS = KINDS;
  return api;
}));

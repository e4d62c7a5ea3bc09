// The two time-series charts, drawn by uPlot from the model's history. uPlot is loaded on first
// use: only admins see charts, so nobody else downloads it.

let loading = null;
const loadUPlot = () => (loading ??= import("uplot").then((m) => m.default));

const SERIES = {
  rates: [
    { key: "negotiate", label: "negotiate", stroke: "#3b5bdb" },
    { key: "hubMethods", label: "hub methods", stroke: "#0ca678" },
    { key: "syncs", label: "syncs", stroke: "#f08c00" },
    { key: "errors", label: "errors", stroke: "#e03131" },
  ],
  latency: [
    { key: "p50", label: "p50", stroke: "#3b5bdb" },
    { key: "p95", label: "p95", stroke: "#ae3ec9" },
  ],
};

/** The columns uPlot wants: [times, ...one array per series]. */
export function columns(history, kind) {
  return [history.map((p) => p.t), ...SERIES[kind].map((s) => history.map((p) => p[s.key]))];
}

export class Chart {
  /** @param {HTMLElement} el @param {"rates" | "latency"} kind */
  constructor(el, kind) {
    this.el = el;
    this.kind = kind;
    this.plot = null;
  }

  update(history) {
    loadUPlot().then((uPlot) => this.draw(uPlot, history));
  }

  draw(uPlot, history) {
    const data = columns(history, this.kind);
    const width = Math.max(280, this.el.clientWidth);
    if (!this.plot) {
      this.plot = new uPlot(
        {
          width,
          height: 200,
          series: [{}, ...SERIES[this.kind].map((s) => ({ label: s.label, stroke: s.stroke, width: 2, spanGaps: true }))],
          axes: [{}, { size: 50 }],
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
          legend: { live: false },
        },
        data,
        this.el,
      );
    } else {
      if (this.plot.width !== width) this.plot.setSize({ width, height: 200 });
      this.plot.setData(data);
    }
  }
}

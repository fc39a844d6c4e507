/* trainprof: a stand-in for Google Charts where www.gstatic.com is out of reach (an offline GPU
   box). The profiler plugin waits for google.charts.load() before it draws any view; with this,
   its views load, tables draw as plain HTML tables, and each chart says what it needs. Where the
   real loader did load, nothing here runs. */
(function () {
  if (window.google && window.google.charts) return;
  var g = (window.google = window.google || {});
  function val(v) { return v !== null && typeof v === "object" && "v" in v ? v.v : v; }
  function text(v) { return v !== null && typeof v === "object" && "f" in v && v.f != null ? v.f : val(v); }
  function DataTable(spec) {
    this.cols = []; this.rows = [];
    if (spec && spec.cols) { this.cols = spec.cols.slice(); this.rows = (spec.rows || []).map(function (r) { return r.c || r; }); }
  }
  DataTable.prototype = {
    addColumn: function (t, label) { this.cols.push(typeof t === "object" ? t : { type: t, label: label }); return this.cols.length - 1; },
    addRows: function (rows) { if (typeof rows === "number") { for (var i = 0; i < rows; i++) this.rows.push([]); } else { for (var j = 0; j < rows.length; j++) this.rows.push(rows[j]); } },
    addRow: function (r) { this.rows.push(r || []); return this.rows.length - 1; },
    getNumberOfRows: function () { return this.rows.length; },
    getNumberOfColumns: function () { return this.cols.length; },
    getValue: function (i, j) { return val((this.rows[i] || [])[j]); },
    getFormattedValue: function (i, j) { var v = text((this.rows[i] || [])[j]); return v == null ? "" : String(v); },
    getColumnLabel: function (j) { return (this.cols[j] || {}).label || (this.cols[j] || {}).name || ""; },
    getColumnType: function (j) { return (this.cols[j] || {}).type || "string"; },
    getColumnRole: function (j) { return (this.cols[j] || {}).role || ""; },
    setCell: function (i, j, v) { (this.rows[i] = this.rows[i] || [])[j] = v; },
    setValue: function (i, j, v) { (this.rows[i] = this.rows[i] || [])[j] = v; },
    setFormattedValue: function () {}, setProperty: function () {}, setColumnProperty: function () {},
    setColumnProperties: function () {}, setRowProperty: function () {}, setProperties: function () {},
    getColumnProperty: function () { return null; }, getProperty: function () { return null; },
    getTableProperty: function () { return null; }, sort: function () {}, getSortedRows: function () { return this.rows.map(function (_, i) { return i; }); }
  };
  function note(el) {
    el.innerHTML = '<div style="padding:16px;color:#667085;font:13px sans-serif;border:1px dashed #d0d5dd;border-radius:6px">' +
      "This chart needs Google Charts (www.gstatic.com), which this browser cannot reach.</div>";
  }
  function Chart(el) { this.el = el; }
  Chart.prototype = { draw: function () { if (this.el) note(this.el); }, getSelection: function () { return []; },
    setSelection: function () {}, clearChart: function () {}, getChart: function () { return this; } };
  function Table(el) { this.el = el; }
  Table.prototype = Object.create(Chart.prototype);
  Table.prototype.draw = function (t) {
    if (!this.el) return;
    var labels = t.cols.map(function (c, j) { return t.getColumnRole(j) ? null : t.getColumnLabel(j); });
    var h = '<table style="border-collapse:collapse;font:13px sans-serif"><tr>';
    labels.forEach(function (l) { if (l !== null) h += '<th style="text-align:left;padding:3px 10px;border-bottom:1px solid #ccc"></th>'; });
    h += "</tr></table>";
    this.el.innerHTML = h;
    var table = this.el.firstChild, head = table.rows[0], k = 0;
    labels.forEach(function (l) { if (l !== null) head.cells[k++].textContent = l; });
    t.rows.forEach(function (_, i) {
      var tr = table.insertRow();
      labels.forEach(function (l, j) { if (l !== null) { var td = tr.insertCell(); td.style.padding = "2px 10px"; td.textContent = t.getFormattedValue(i, j); } });
    });
  };
  g.charts = { load: function () { return Promise.resolve(); }, setOnLoadCallback: function (cb) { Promise.resolve().then(cb); } };
  g.visualization = {
    DataTable: DataTable, Table: Table,
    arrayToDataTable: function (a) { var t = new DataTable(); (a[0] || []).forEach(function (h) { t.addColumn(typeof h === "object" ? h : { type: "string", label: h }); }); t.addRows(a.slice(1)); return t; },
    ColumnChart: Chart, ComboChart: Chart, LineChart: Chart, PieChart: Chart, SteppedAreaChart: Chart, Timeline: Chart, AreaChart: Chart, BarChart: Chart,
    events: { addListener: function () { return {}; }, addOneTimeListener: function () { return {}; }, removeListener: function () {}, removeAllListeners: function () {} }
  };
})();

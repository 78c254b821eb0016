// The create and modify form. Field errors are the API's own messages,
// shown at the field they name.
import { h, toast } from './ui.js';
import { objectPicker } from './tree.js';

const TYPES = [['mysql', 'MySQL'], ['mariadb', 'MariaDB'], ['percona', 'Percona'], ['postgresql', 'PostgreSQL']];
const ACCESS = [['extranet', 'address (extranet)'], ['cvm', 'address (cvm)'], ['vpncloud', 'address (vpncloud)'], ['vpnselfbuild', 'address (vpnselfbuild)'], ['dcg', 'address (dcg)'], ['ccn', 'address (ccn)'], ['cdb', 'InstanceId from the catalogue (cdb)']];

function field(param, label, input, hint) {
  const id = `f-${param.replace(/\./g, '-')}`;
  input.id = id;
  input.name = param;
  input.dataset.param = param;
  const err = h('p', { class: 'field-error', id: `${id}-err`, 'data-error-for': param });
  input.setAttribute('aria-describedby', `${id}-err${hint ? ` ${id}-hint` : ''}`);
  return h('div', { class: 'field', 'data-field': param },
    h('label', { for: id }, label), input,
    hint && h('p', { class: 'hint', id: `${id}-hint` }, hint), err);
}

function select(options, value) {
  return h('select', {}, options.map(([v, l]) => h('option', { value: v, selected: String(v) === String(value) }, l)));
}

function radios(name, legend, options, value) {
  return h('fieldset', { class: 'field radios', 'data-field': name },
    h('legend', {}, legend),
    options.map(([v, l]) => h('label', { class: 'radio' },
      h('input', { type: 'radio', name, value: v, checked: String(v) === String(value), 'data-param': name }), ' ', l)),
    h('p', { class: 'field-error', 'data-error-for': name }));
}

function side(prefix, label, type, access, info, editing) {
  const typeSel = select(TYPES, type);
  if (editing) typeSel.disabled = true;
  const accessSel = select(ACCESS, access);
  const box = h('fieldset', { class: 'side', id: `${prefix}-side` },
    h('legend', {}, label),
    field(`${prefix}DatabaseType`, 'Database type', typeSel, editing ? 'cannot change after creation' : null),
    field(`${prefix}AccessType`, 'Access type', accessSel),
    h('div', { class: 'by-instance' }, field(`${prefix}Info.InstanceId`, 'InstanceId', h('input', { value: info.InstanceId || '', spellcheck: 'false' }), 'an id of opendts\'s instance catalogue')),
    h('div', { class: 'by-address row' },
      field(`${prefix}Info.Ip`, 'Host or IP', h('input', { value: info.Ip || '', spellcheck: 'false' })),
      field(`${prefix}Info.Port`, 'Port', h('input', { value: info.Port || '', inputmode: 'numeric', class: 'port' }))),
    h('div', { class: 'row' },
      field(`${prefix}Info.User`, 'User', h('input', { value: info.User || '', autocomplete: 'off', spellcheck: 'false' })),
      field(`${prefix}Info.Password`, 'Password', h('input', { type: 'password', autocomplete: 'new-password' }), editing ? 'leave empty to keep the stored one' : null)));
  const sync = () => {
    const cdb = accessSel.value === 'cdb';
    box.querySelector('.by-instance').hidden = !cdb;
    box.querySelector('.by-address').hidden = cdb;
  };
  accessSel.addEventListener('change', sync);
  sync();
  return box;
}

export function formView({ main, call, go }, jobId) {
  const editing = !!jobId;
  document.title = `${editing ? 'Modify ' + jobId : 'New job'} · opendts console`;
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  const load = editing
    ? call('DescribeMigrateJobs', { JobId: jobId, Limit: 1 }).then((o) => o.JobList[0])
    : Promise.resolve(null);
  load.then((j) => build(j)).catch((e) => main.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Could not read job ${jobId}: ${e.message}`)));

  function build(j) {
    j = j || { MigrateOption: { RunMode: 1, MigrateType: 3, ConsistencyType: 1 }, SrcDatabaseType: 'mysql', SrcAccessType: 'extranet', SrcInfo: {}, DstDatabaseType: 'mysql', DstAccessType: 'extranet', DstInfo: {}, DatabaseInfo: '[]' };
    const o = j.MigrateOption;
    const whole = !j.DatabaseInfo || j.DatabaseInfo === '[]';
    const dbInfo = h('textarea', { rows: 4, spellcheck: 'false', class: 'mono' }, whole ? '' : j.DatabaseInfo);
    const expect = h('input', { type: 'datetime-local', step: 1, value: o.ExpectTime ? o.ExpectTime.replace(' ', 'T') : '' });
    const formErr = h('div', { class: 'error', role: 'alert', id: 'form-error' });
    const form = h('form', { id: 'job-form', class: 'card', novalidate: true },
      h('h1', {}, editing ? `Modify ${j.JobName || jobId}` : 'New migration job'),
      formErr,
      field('JobName', 'Job name', h('input', { value: j.JobName || '', required: true, spellcheck: 'false' })),
      h('div', { class: 'sides' },
        side('Src', 'Source', j.SrcDatabaseType, j.SrcAccessType, j.SrcInfo || {}, editing),
        side('Dst', 'Target', j.DstDatabaseType, j.DstAccessType, j.DstInfo || {}, editing)),
      radios('MigrateOption.MigrateType', 'Migration type', [[1, 'structure only'], [2, 'full (structure and rows)'], [3, 'full + incremental (then follows the source\'s changes until completed)']], o.MigrateType),
      radios('MigrateObject', 'Objects', [['whole', 'the whole instance'], ['some', 'a selection of databases and tables']], whole ? 'whole' : 'some'),
      h('div', { id: 'selection' },
        h('div', { id: 'object-tree' }),
        field('DatabaseInfo', 'DatabaseInfo (JSON)', dbInfo, 'filled by the tree above, or write it: [{"Database":"db1","Table":["t1"]},{"Database":"db2"}]')),
      field('MigrateOption.ConsistencyType', 'Verification after the copy', select([[1, 'none'], [2, 'compare every row of every table'], [3, 'sampled (ConsistencyParams)']], { 2: 2, 3: 3, 4: 2 }[o.ConsistencyType] || 1)),
      h('div', { id: 'sampling', class: 'row' },
        ['SelectRowsPerTable', 'TablesSelectAll', 'TablesSelectCount'].map((k, i) => field(`MigrateOption.ConsistencyParams.${k}`,
          ['% of rows compared per table', '% of tables whose rows are compared', '% of tables whose row counts are compared'][i],
          h('input', { inputmode: 'numeric', value: (o.ConsistencyParams || {})[k] || [10, 100, 100][i] }), `${k}, 1 to 100`))),
      h('div', { class: 'field' }, h('label', { class: 'radio' },
        h('input', { type: 'checkbox', id: 'f-DstInfo-ReadOnly', 'data-param': 'DstInfo.ReadOnly', checked: (j.DstInfo || {}).ReadOnly === 1 }),
        ' Keep the target read-only while the job runs (DstInfo.ReadOnly)'),
      h('p', { class: 'field-error', 'data-error-for': 'DstInfo.ReadOnly' })),
      radios('MigrateOption.RunMode', 'Start', [[1, 'when I press Start'], [2, 'at a set time (ExpectTime)']], o.RunMode),
      h('div', { id: 'expect' }, field('MigrateOption.ExpectTime', 'ExpectTime (server time)', expect)),
      h('div', { class: 'buttons' },
        h('a', { href: editing ? `#/jobs/${encodeURIComponent(jobId)}` : '#/jobs', class: 'button' }, 'Cancel'),
        h('button', { type: 'submit', class: 'primary', id: 'form-submit' }, editing ? 'Save changes' : 'Create job')));
    main.replaceChildren(form);
    const q = (sel) => form.querySelector(sel);
    const val = (p) => q(`[data-param="${p}"]`).value.trim();
    const radio = (n) => (q(`input[name="${n}"]:checked`) || {}).value;
    const syncVis = () => {
      q('#selection').hidden = radio('MigrateObject') !== 'some';
      q('#expect').hidden = radio('MigrateOption.RunMode') !== '2';
      q('#sampling').hidden = val('MigrateOption.ConsistencyType') !== '3';
      // A hidden part is not sent: its errors no longer apply.
      for (const part of form.querySelectorAll('#selection[hidden], #expect[hidden], #sampling[hidden]')) {
        for (const e of part.querySelectorAll('.field-error')) e.textContent = '';
        for (const e of part.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
      }
      if (!form.querySelector('[aria-invalid]')) formErr.textContent = '';
    };
    form.addEventListener('change', syncVis);
    syncVis();
    // A field's error goes when the field is edited.
    const clearField = (ev) => {
      const p = ev.target.dataset && ev.target.dataset.param;
      if (!p || !ev.target.hasAttribute('aria-invalid')) return;
      ev.target.removeAttribute('aria-invalid');
      const slot = q(`[data-error-for="${p}"]`);
      if (slot) slot.textContent = '';
      if (!form.querySelector('[aria-invalid]')) formErr.textContent = '';
    };
    form.addEventListener('input', clearField);
    form.addEventListener('change', clearField);

    // The tree lists the source as typed; when modifying a job whose source
    // is unchanged and no password was typed, the job's stored source (with
    // its stored password) is listed instead.
    const sourceKey = (type, access, si) => JSON.stringify([type, access, si.Ip || '', Number(si.Port || 0), si.InstanceId || '', si.User || '']);
    const stored = editing ? sourceKey(j.SrcDatabaseType, j.SrcAccessType, j.SrcInfo || {}) : null;
    objectPicker(q('#object-tree'), {
      call, dbInfo,
      source: () => {
        const si = info('Src');
        if (editing && !si.Password && sourceKey(val('SrcDatabaseType'), val('SrcAccessType'), si) === stored) return { JobId: jobId };
        return { SrcDatabaseType: val('SrcDatabaseType'), SrcAccessType: val('SrcAccessType'), SrcInfo: si };
      },
    });

    function info(prefix) {
      const out = {};
      const access = val(`${prefix}AccessType`);
      if (access === 'cdb') {
        if (val(`${prefix}Info.InstanceId`)) out.InstanceId = val(`${prefix}Info.InstanceId`);
      } else {
        if (val(`${prefix}Info.Ip`)) out.Ip = val(`${prefix}Info.Ip`);
        const port = val(`${prefix}Info.Port`);
        if (port) out.Port = /^\d+$/.test(port) ? Number(port) : port;
      }
      if (val(`${prefix}Info.User`)) out.User = val(`${prefix}Info.User`);
      const pw = q(`[data-param="${prefix}Info.Password"]`).value;
      if (pw || !editing) out.Password = pw;
      return out;
    }

    function clearErrors() {
      formErr.textContent = '';
      for (const e of form.querySelectorAll('.field-error')) e.textContent = '';
      for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
    }

    // showError puts a message at the field whose parameter it names (the
    // longest name found in the message), else at the top of the form.
    function showError(msg) {
      const params = [...form.querySelectorAll('[data-error-for]')].map((e) => e.dataset.errorFor)
        .filter((p) => p !== 'MigrateObject');
      const named = params.filter((p) => msg.includes(p))
        .sort((a, b) => b.length - a.length)[0];
      const slot = named && q(`[data-error-for="${named}"]`);
      if (slot) {
        slot.textContent = msg;
        const input = q(`[data-param="${named}"]`);
        if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
        formErr.textContent = 'The server refused the job: see the field marked below.';
      } else {
        formErr.textContent = msg;
        formErr.focus?.();
      }
    }

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors();
      const params = {};
      if (editing) params.JobId = jobId;
      params.JobName = val('JobName');
      if (!editing) {
        params.SrcDatabaseType = val('SrcDatabaseType');
        params.DstDatabaseType = val('DstDatabaseType');
      }
      params.SrcAccessType = val('SrcAccessType');
      params.DstAccessType = val('DstAccessType');
      params.SrcInfo = info('Src');
      params.DstInfo = info('Dst');
      params.DstInfo.ReadOnly = q('#f-DstInfo-ReadOnly').checked ? 1 : 0;
      const mo = {
        RunMode: Number(radio('MigrateOption.RunMode')),
        MigrateType: Number(radio('MigrateOption.MigrateType')),
        ConsistencyType: Number(val('MigrateOption.ConsistencyType')),
      };
      if (mo.ConsistencyType === 3) {
        mo.ConsistencyParams = {};
        for (const k of ['SelectRowsPerTable', 'TablesSelectAll', 'TablesSelectCount']) {
          const v = val(`MigrateOption.ConsistencyParams.${k}`);
          mo.ConsistencyParams[k] = /^\d+$/.test(v) ? Number(v) : v;
        }
      }
      if (mo.RunMode === 2) {
        const t = expect.value;
        if (!t) { showError('MigrateOption.ExpectTime is needed with RunMode 2: pick when the job starts.'); return; }
        // The server's wall-clock time, as typed: no time-zone conversion.
        mo.ExpectTime = t.replace('T', ' ') + (t.length === 16 ? ':00' : '');
      }
      if (radio('MigrateObject') === 'some') {
        const text = dbInfo.value.trim();
        try {
          const parsed = JSON.parse(text || 'null');
          if (!Array.isArray(parsed) || !parsed.length) throw new Error('not a non-empty array');
        } catch (e) {
          showError(`DatabaseInfo must be a JSON array of objects like [{"Database":"db1"}] (${e.message}); pick the objects in the tree or write it.`);
          return;
        }
        mo.MigrateObject = 2;
        params.DatabaseInfo = text;
      } else {
        mo.MigrateObject = 1;
        params.DatabaseInfo = '[]';
      }
      params.MigrateOption = mo;
      const btn = q('#form-submit');
      btn.disabled = true;
      try {
        if (editing) {
          await call('ModifyMigrateJob', params);
          toast(`Saved ${jobId}: check it again before starting.`);
          go(`#/jobs/${encodeURIComponent(jobId)}`);
        } else {
          const out = await call('CreateMigrateJob', params);
          toast(`Created ${out.JobId}.`);
          go(`#/jobs/${encodeURIComponent(out.JobId)}`);
        }
      } catch (e) {
        showError(e.code ? `${e.message}` : String(e.message));
      } finally {
        btn.disabled = false;
      }
    });
    form.querySelector('[data-param="JobName"]').focus();
  }
  return {};
}

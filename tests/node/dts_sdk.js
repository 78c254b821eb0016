"use strict";
// dts_sdk.js drives a running opendts with the official Node.js SDK
// (tencentcloud-sdk-nodejs, the version pinned in package.json), the way a
// script written for the cloud would: every migration action, in every
// signing mode and HTTP method the SDK offers, and the common errors.
//
// Run by internal/dtsapi's TestNodeSDK against a server it starts; by hand:
//   OPENDTS_ENDPOINT=127.0.0.1:9988 OPENDTS_SECRET_ID=... OPENDTS_SECRET_KEY=... node dts_sdk.js
// (the migrations it starts need a server whose engine passes the checks
// and runs without databases: the test's).
//
// It prints one JSON line per check ({"mode", "check", "ok", "error"}) and
// one per job it leaves behind ({"mode", "job", "want"}: the status the job
// must have, or "deleted"), so the caller can verify the server's side.
// Exit status 1 when a check failed.
//
// The SDK's dts.v20180330 client has no DescribeRegionConf method, so that
// action goes through the SDK's generic request(), which signs and sends
// exactly as the typed methods do.

const tencentcloud = require("tencentcloud-sdk-nodejs");
const DtsClient = tencentcloud.dts.v20180330.Client;

function env(name, fallback) {
  const v = process.env[name] || fallback;
  if (!v) {
    console.error(`dts_sdk.js: set ${name}`);
    process.exit(2);
  }
  return v;
}

const endpoint = env("OPENDTS_ENDPOINT");
const secretId = env("OPENDTS_SECRET_ID");
const secretKey = env("OPENDTS_SECRET_KEY");
const region = env("OPENDTS_REGION", "ap-guangzhou");
// "https://" for a server with -tls-cert (NODE_EXTRA_CA_CERTS names a CA
// that Node does not know).
const protocol = env("OPENDTS_PROTOCOL", "http://");

// Every signing mode and method the SDK has; TC3-HMAC-SHA256 is its default.
const modes = [
  { name: "TC3 POST", sign: undefined, method: "POST" },
  { name: "TC3 GET", sign: "TC3-HMAC-SHA256", method: "GET" },
  { name: "HmacSHA256 POST", sign: "HmacSHA256", method: "POST" },
  { name: "HmacSHA256 GET", sign: "HmacSHA256", method: "GET" },
  { name: "HmacSHA1 POST", sign: "HmacSHA1", method: "POST" },
  { name: "HmacSHA1 GET", sign: "HmacSHA1", method: "GET" },
];

function client(mode, id = secretId, key = secretKey) {
  const profile = { httpProfile: { endpoint, protocol, reqMethod: mode.method, reqTimeout: 30 } };
  if (mode.sign) profile.signMethod = mode.sign;
  return new DtsClient({ credential: { secretId: id, secretKey: key }, region, profile });
}

let failed = false;

function report(mode, check, error) {
  const line = { mode: mode.name, check, ok: !error };
  if (error) {
    line.error = String(error);
    failed = true;
  }
  console.log(JSON.stringify(line));
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

// check runs fn and reports it; it returns fn's result, or undefined when
// fn failed.
async function check(mode, name, fn) {
  try {
    const out = await fn();
    report(mode, name);
    return out;
  } catch (e) {
    report(mode, name, e.code ? `${e.code}: ${e.message}` : e.stack || e);
    return undefined;
  }
}

// expectCode runs fn and wants it to fail with the API error code.
async function expectCode(mode, name, code, fn) {
  try {
    await fn();
    report(mode, name, `succeeded; want ${code}`);
  } catch (e) {
    report(mode, name, e.code === code ? undefined : `got ${e.code || "no code"} (${e.message}); want ${code}`);
  }
}

async function describe(c, jobId) {
  const r = await c.DescribeMigrateJobs({ JobId: jobId });
  assert(r.TotalCount === 1 && r.JobList.length === 1, `DescribeMigrateJobs(${jobId}) found ${r.TotalCount} jobs`);
  return r.JobList[0];
}

async function waitStatus(c, jobId, want) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const j = await describe(c, jobId);
    if (j.Status === want) return j;
    if (Date.now() > deadline) throw new Error(`job ${jobId} at status ${j.Status}, never reached ${want}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function jobRequest(mode, i, name) {
  return {
    JobName: name,
    MigrateOption: { RunMode: 1, MigrateType: 3, MigrateObject: 2, ConsistencyType: 5, IsOverrideRoot: 0 },
    SrcDatabaseType: "mysql",
    SrcAccessType: "extranet",
    SrcInfo: { Ip: "10.0.0.1", Port: 3306, User: "dts", Password: "src-pa$$word", Region: region, Supplier: "others" },
    DstDatabaseType: "mysql",
    DstAccessType: "extranet",
    DstInfo: { Ip: "10.0.0.2", Port: 3306, User: "dts", Password: "dst-pa$$word", Region: region, ReadOnly: 0 },
    // Each job writes other objects, so none is another's duplicate.
    DatabaseInfo: JSON.stringify([{ Database: `node_${i}`, Table: ["orders", "order items"] }]),
    Tags: [{ TagKey: "sdk", TagValue: mode.name }],
  };
}

// lifecycle takes one job through every action to status 9 and another
// through Stop and Delete, with the client of one mode.
async function lifecycle(mode, n) {
  const c = client(mode);
  await check(mode, "DescribeRegionConf", async () => {
    const r = await c.request("DescribeRegionConf", {});
    assert(r.TotalCount >= 1 && r.Items[0].Region === region && r.Items[0].IsDefaultRegion === 1, `regions ${JSON.stringify(r.Items)}`);
  });

  const id = await check(mode, "CreateMigrateJob", async () => {
    const r = await c.CreateMigrateJob(jobRequest(mode, 2 * n, `node ${mode.name} 夜`));
    assert(/^dts-[a-z0-9]{8}$/.test(r.JobId), `job id ${r.JobId}`);
    return r.JobId;
  });
  if (!id) return;
  await check(mode, "DescribeMigrateJobs", async () => {
    const j = await describe(c, id);
    assert(j.JobName === `node ${mode.name} 夜` && j.Status === 1, `job ${JSON.stringify(j)}`);
    assert(j.SrcInfo.Password === undefined || j.SrcInfo.Password === "", "a password came back");
    // Nested filters travel flattened in GET and v1 requests.
    const byTag = await c.DescribeMigrateJobs({ TagFilters: [{ TagKey: "sdk", TagValue: [mode.name] }], Limit: 10 });
    assert(byTag.JobList.some((x) => x.JobId === id), `tag filter did not find ${id}`);
  });
  await check(mode, "ModifyMigrateJob", async () => {
    await c.ModifyMigrateJob({
      JobId: id,
      JobName: `renamed ${mode.name}`,
      MigrateOption: { RunMode: 1, MigrateType: 3, MigrateObject: 2, ConsistencyType: 3,
        ConsistencyParams: { SelectRowsPerTable: 10, TablesSelectAll: 20, TablesSelectCount: 30 } },
    });
    const j = await describe(c, id);
    assert(j.JobName === `renamed ${mode.name}` && j.MigrateOption.ConsistencyParams.TablesSelectCount === 30, `after modify ${JSON.stringify(j)}`);
  });
  await check(mode, "CreateMigrateCheckJob", async () => {
    const before = await c.DescribeMigrateCheckJob({ JobId: id });
    assert(before.Status === "unavailable", `check status before ${before.Status}`);
    await c.CreateMigrateCheckJob({ JobId: id });
    await waitStatus(c, id, 4);
  });
  await check(mode, "DescribeMigrateCheckJob", async () => {
    const r = await c.DescribeMigrateCheckJob({ JobId: id });
    assert(r.Status === "finished" && r.CheckFlag === 1 && r.Progress === "100", `check ${JSON.stringify(r)}`);
  });
  await check(mode, "StartMigrateJob", async () => {
    await c.StartMigrateJob({ JobId: id });
    await waitStatus(c, id, 8);
  });
  await check(mode, "CompleteMigrateJob", async () => {
    await c.CompleteMigrateJob({ JobId: id });
    await waitStatus(c, id, 9);
  });
  console.log(JSON.stringify({ mode: mode.name, job: id, want: 9 }));

  const other = await check(mode, "StopMigrateJob", async () => {
    const r = await c.CreateMigrateJob(jobRequest(mode, 2 * n + 1, `to stop ${mode.name}`));
    await c.CreateMigrateCheckJob({ JobId: r.JobId });
    await waitStatus(c, r.JobId, 4);
    await c.StartMigrateJob({ JobId: r.JobId });
    await waitStatus(c, r.JobId, 8);
    await c.StopMigrateJob({ JobId: r.JobId });
    await waitStatus(c, r.JobId, 10);
    return r.JobId;
  });
  if (!other) return;
  await check(mode, "DeleteMigrateJob", async () => {
    await c.DeleteMigrateJob({ JobId: other });
    const r = await c.DescribeMigrateJobs({ JobId: other });
    assert(r.TotalCount === 0, `deleted job still listed`);
  });
  console.log(JSON.stringify({ mode: mode.name, job: other, want: "deleted" }));
}

async function errors(mode) {
  const req = () => client(mode).DescribeMigrateJobs({ Limit: 1 });
  await expectCode(mode, "wrong key", "AuthFailure.SignatureFailure", () => client(mode, secretId, secretKey + "x").DescribeMigrateJobs({ Limit: 1 }));
  await expectCode(mode, "unknown SecretId", "AuthFailure.SecretIdNotFound", () => client(mode, "AKIDnobodyknows", secretKey).DescribeMigrateJobs({ Limit: 1 }));
  await expectCode(mode, "missing JobId", "MissingParameter", () => client(mode).DeleteMigrateJob({}));
  await expectCode(mode, "job that does not exist", "ResourceNotFound.JobNotExist", () => client(mode).StartMigrateJob({ JobId: "dts-zzzzzzzz" }));
  await check(mode, "right key after the errors", req);
}

(async () => {
  for (const [n, mode] of modes.entries()) {
    await lifecycle(mode, n);
    await errors(mode);
  }
  process.exit(failed ? 1 : 0);
})();

#!/usr/bin/env node
// onetable.mjs: runs one request through OneTable (dynamodb-onetable 2.7.7), an independent
// DynamoDB client for iotod's tests. internal/onetable runs it; see docs/testing.md.
//
// Reads one JSON request on stdin:
//   {
//     "endpoint": "http://127.0.0.1:18000",   // DynamoDB (Local); required
//     "region": "us-east-1",                  // optional
//     "table": "items-1a2b",                  // the table's name; required
//     "schema": {...},                        // a OneTable schema object; required
//     "partial": false,                       // Table's `partial` (default: schema.params.partial, else false)
//     "op": "createTable" | "deleteTable" | "describeTable"
//         | "create" | "update" | "upsert" | "get" | "find" | "remove" | "scan",
//     "model": "Account",                     // the model, for item operations
//     "properties": {...},                    // the operation's properties
//     "params": {...}                         // the operation's OneTable params
//   }
// and prints the result as JSON on stdout:
//   create, update, upsert, get, remove: the item OneTable returns (dates as ISO strings), or null;
//   find, scan: {"items": [...], "next": ..., "prev": ..., "count": ...} (absent ones omitted);
//   createTable, describeTable: DynamoDB's answer; deleteTable: {}.
// createTable waits until the table is active (params.wait seconds, default 60): OneTable's own
// does not wait unless asked.
// On error it prints {"error": "...", "code": "...", "name": "..."} and exits with status 1.
// Property values that are strings of the form {"$date": "ISO"} are turned into Date objects.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Table } from 'dynamodb-onetable';

async function readStdin() {
    const chunks = [];
    for await (const chunk of process.stdin) {
        chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
}

// revive turns {"$date": "..."} into a Date, recursively.
function revive(v) {
    if (Array.isArray(v)) {
        return v.map(revive);
    }
    if (v && typeof v === 'object') {
        const keys = Object.keys(v);
        if (keys.length === 1 && keys[0] === '$date') {
            return new Date(v.$date);
        }
        const out = {};
        for (const [k, x] of Object.entries(v)) {
            out[k] = revive(x);
        }
        return out;
    }
    return v;
}

function fail(err) {
    const out = { error: String(err && err.message ? err.message : err) };
    if (err && err.code) {
        out.code = String(err.code);
    }
    if (err && err.name) {
        out.name = String(err.name);
    }
    process.stdout.write(JSON.stringify(out) + '\n');
    process.exit(1);
}

// OneTable's logger: errors and warnings go to stderr; stdout carries only the result.
function logger(level, message, context) {
    if (level === 'error' || level === 'warn') {
        console.error(`onetable ${level}:`, message, context ? JSON.stringify(context) : '');
    }
}
// Anything else that prints (console.log) goes to stderr too.
console.log = (...args) => console.error(...args);

async function main() {
    let req;
    try {
        req = JSON.parse(await readStdin());
    } catch (err) {
        fail(new Error('bad request: ' + err.message));
    }
    for (const k of ['endpoint', 'table', 'schema', 'op']) {
        if (!req[k]) {
            fail(new Error(`bad request: missing "${k}"`));
        }
    }
    // The pinned SDK warns on every run that its later versions will need Node 22: not news here.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const client = new DynamoDBClient({
        endpoint: req.endpoint,
        region: req.region || 'us-east-1',
        credentials: { accessKeyId: 'iotod', secretAccessKey: 'iotod' },
        maxAttempts: 3,
    });
    const partial = req.partial ?? req.schema.params?.partial ?? false;
    const table = new Table({ client, name: req.table, schema: req.schema, partial, logger });
    const props = revive(req.properties || {});
    const params = revive(req.params || {});
    const model = req.model;
    const needModel = () => {
        if (!model) {
            throw new Error(`op "${req.op}" needs a model`);
        }
    };
    let result;
    switch (req.op) {
    case 'createTable':
        if (params.wait == null) {
            params.wait = 60;
        }
        result = await table.createTable(params);
        break;
    case 'deleteTable':
        await table.deleteTable('DeleteTableForever');
        result = {};
        break;
    case 'describeTable':
        result = await table.describeTable();
        break;
    case 'create':
    case 'update':
    case 'upsert':
    case 'get':
    case 'remove':
        needModel();
        result = await table[req.op](model, props, params);
        if (result === undefined) {
            result = null;
        }
        break;
    case 'find':
    case 'scan': {
        needModel();
        const items = await table[req.op](model, props, params);
        result = { items: Array.from(items || []) };
        for (const k of ['next', 'prev', 'count']) {
            if (items && items[k] !== undefined) {
                result[k] = items[k];
            }
        }
        break;
    }
    default:
        throw new Error(`unknown op "${req.op}"`);
    }
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exitCode = 0;
}

main().catch(fail);

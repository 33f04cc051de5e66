// The real ates binary on the embedded default (SQLite, in-process bus), one per test file,
// with a fresh ATES_DATA_DIR and a port of its own; accounts of other roles are made through
// GraphQL as the admin.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ADMIN = { username: 'admin', password: 'admin-beak-print-1' };
export const PASSWORD = 'beak-print-123';

export type Role = 'ADMIN' | 'MANAGER' | 'ACCOUNTANT' | 'WORKER';

export interface Gateway {
  url: string;
  gql<T = any>(query: string, variables?: Record<string, unknown>, token?: string): Promise<T>;
  login(username: string, password?: string): Promise<{ token: string; id: string }>;
  adminToken(): Promise<string>;
  createAccount(username: string, role: Role, fullName?: string): Promise<{ id: string; username: string }>;
  createTask(token: string, title: string, description?: string, jiraId?: string): Promise<{ id: string; assignee: { id: string } }>;
  stop(): Promise<void>;
  logs(): string;
}

export async function startGateway(env: Record<string, string> = {}): Promise<Gateway> {
  const bin = process.env.ATES_BINARY;
  if (!bin) throw new Error('ATES_BINARY is not set: globalSetup builds it');
  const dataDir = mkdtempSync(join(tmpdir(), 'ates-e2e-data-'));
  const child: ChildProcess = spawn(bin, [], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ATES_DATA_DIR: dataDir,
      ATES_HTTP_ADDR: '127.0.0.1:0',
      ATES_ADMIN_USERNAME: ADMIN.username,
      ATES_ADMIN_PASSWORD: ADMIN.password,
      ATES_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (b) => (out += b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ates did not start within 60 s:\n${out}`)), 60_000);
    child.stdout!.on('data', (b) => {
      out += b.toString();
      const m = /aTES is up: GraphQL (http:\/\/\S+)\/graphql/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ates exited with ${code}:\n${out}`));
    });
  });

  const gql = async (query: string, variables: Record<string, unknown> = {}, token?: string) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: any; errors?: { message: string }[] };
    if (body.errors?.length) throw new Error(`GraphQL: ${body.errors.map((e) => e.message).join('; ')}`);
    return body.data;
  };
  let admin: string | undefined;
  const gw: Gateway = {
    url,
    gql,
    logs: () => out,
    async login(username, password = PASSWORD) {
      const d = await gql('mutation($u:String!,$p:String!){login(username:$u,password:$p){token account{id}}}', { u: username, p: password });
      return { token: d.login.token, id: d.login.account.id };
    },
    async adminToken() {
      admin ??= (await gw.login(ADMIN.username, ADMIN.password)).token;
      return admin;
    },
    async createAccount(username, role, fullName) {
      const d = await gql(
        'mutation($i:CreateAccountInput!){createAccount(input:$i){id username}}',
        { i: { username, password: PASSWORD, fullName: fullName ?? username.replace(/^./, (c) => c.toUpperCase()), email: `${username}@uberpopug.com`, role } },
        await gw.adminToken(),
      );
      return d.createAccount;
    },
    async createTask(token, title, description = `${title}: details`, jiraId) {
      const d = await gql(
        'mutation($i:CreateTaskInput!){createTask(input:$i){id assignee{id}}}',
        { i: { title, description, jiraId: jiraId ?? null } },
        token,
      );
      return d.createTask;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return gw;
}

// The task board (R-WEB-3, R-TASK-1, R-TASK-6, R-LIVE-1).
import { memo, useCallback, useDeferredValue, useEffect, useMemo, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';
import { useMutation, useQuery } from 'urql';
import {
  Button,
  Group,
  Modal,
  NativeSelect,
  SegmentedControl,
  Stack,
  Table,
  Text,
  TextInput,
  Textarea,
  Title,
} from '@mantine/core';
import { notify } from '../lib/notify';
import { useTranslation } from 'react-i18next';
import {
  AssigneesDocument,
  CompleteTaskDocument,
  CreateTaskDocument,
  MyTasksDocument,
  SearchTasksDocument,
  ShuffleTasksDocument,
  TaskChangedDocument,
  TasksDocument,
} from '../graphql/documents';
import type { TaskFieldsFragment, TaskStatus } from '../gql/graphql';
import { can, useSession } from '../lib/useSession';
import { useLive } from '../lib/useLive';
import { ConfirmButton, ErrorAlert, Money, Pager, errorText, usePaging } from '../components/common';
import { describe } from '../lib/errors';
import { validateTask, type FieldErrors } from '../lib/validate';
import { formatTime } from '../lib/format';
import { useBusinessDay } from '../lib/businessDay';

type Task = TaskFieldsFragment;
const PAGE_SIZES = ['20', '50', '100'];

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setV(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return v;
}

export function TaskBoard() {
  const { t, i18n } = useTranslation();
  const { account } = useSession();
  const me = account!;
  const { timeZone } = useBusinessDay();
  const [params, setParams] = useSearchParams();
  const view = params.get('view') === 'mine' ? 'mine' : 'all';
  const status = (params.get('status') as TaskStatus | null) ?? null;
  const assigneeId = view === 'all' ? params.get('assignee') : null;
  const size = Number(params.get('size') ?? '20') || 20;
  const [searchText, setSearchText] = useState(params.get('q') ?? '');
  const search = useDebounced(searchText.trim(), 300);
  const paging = usePaging();
  const set = (k: string, v: string | null) => {
    // From the address bar: navigations render in a transition, so this render's parameters
    // (and the router's own updater's) may be older than the last change.
    const p = new URLSearchParams(window.location.search);
    if (v) p.set(k, v);
    else p.delete(k);
    setParams(p, { replace: true });
    paging.reset();
  };
  useEffect(() => {
    if ((params.get('q') ?? '') !== search) set('q', search || null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [search]);

  const first = size;
  const after = paging.after;
  const [all, refetchAll] = useQuery({
    query: TasksDocument,
    variables: { first, after, status, assigneeId },
    pause: view !== 'all' || !!search,
  });
  const [mine, refetchMine] = useQuery({
    query: MyTasksDocument,
    variables: { first, after, status },
    pause: view !== 'mine' || !!search,
  });
  const [found, refetchFound] = useQuery({
    query: SearchTasksDocument,
    variables: { search, first, after, status },
    pause: !search,
  });
  const result = search ? found : view === 'mine' ? mine : all;
  const conn = search ? found.data?.searchTasks : view === 'mine' ? mine.data?.myTasks : all.data?.tasks;
  const refetch = useCallback(() => {
    const opts = { requestPolicy: 'network-only' as const };
    if (search) refetchFound(opts);
    else if (view === 'mine') refetchMine(opts);
    else refetchAll(opts);
  }, [search, view, refetchAll, refetchMine, refetchFound]);

  // Live changes (R-LIVE-1) patch the rows at once; a refetch a moment later settles counts and order.
  const [patches, setPatches] = useState<{ changed: Map<string, Task>; added: Task[] }>({ changed: new Map(), added: [] });
  useEffect(() => setPatches({ changed: new Map(), added: [] }), [conn]);
  const settle = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(settle.current), []);
  const matches = useCallback(
    (task: Task) =>
      (!status || task.status === status) &&
      (view !== 'mine' || task.assignee.id === me.id) &&
      (!assigneeId || task.assignee.id === assigneeId),
    [status, view, me.id, assigneeId],
  );
  useLive(
    TaskChangedDocument,
    (d) => {
      const c = d.taskChanged;
      setPatches((p) => {
        const changed = new Map(p.changed);
        changed.set(c.task.id, c.task);
        const known = conn?.edges.some((e) => e.node.id === c.task.id) || p.added.some((x) => x.id === c.task.id);
        const added = !known && paging.page === 0 && !search && matches(c.task) ? [c.task, ...p.added] : p.added;
        return { changed, added };
      });
      clearTimeout(settle.current);
      settle.current = setTimeout(refetch, 1500);
    },
    { variables: view === 'mine' ? { assigneeId: me.id } : {}, onResync: refetch },
  );

  useEffect(() => {
    // The first screen a signed-in person sees, for the budget in docs/benchmarks.md.
    if (conn && !performance.getEntriesByName('ates-first-screen').length) performance.mark('ates-first-screen');
  }, [conn]);
  const rows = useMemo(() => {
    const base = conn?.edges.map((e) => patches.changed.get(e.node.id) ?? e.node) ?? [];
    const added = patches.added.map((x) => patches.changed.get(x.id) ?? x).filter((x) => !base.some((b) => b.id === x.id));
    // Rows on the page stay (with their new state) until the settling refetch; new ones only when they match.
    return [...added.filter(matches), ...base];
  }, [conn, patches, matches]);
  // Rows render in a transition React can interrupt: a page of 100 rows does not hold the main
  // thread for the whole render.
  const shownRows = useDeferredValue(rows, []);

  // Assignees to filter by: every account for an admin; for others, the popugs seen on the board.
  const [assignees] = useQuery({ query: AssigneesDocument, pause: me.role !== 'ADMIN' });
  const seen = useRef(new Map<string, string>());
  for (const r of rows) seen.current.set(r.assignee.id, r.assignee.fullName || r.assignee.username);
  const assigneeOptions = useMemo(() => {
    const m = new Map(seen.current);
    for (const e of assignees.data?.accounts.edges ?? []) m.set(e.node.id, e.node.fullName || e.node.username);
    m.set(me.id, me.fullName);
    return [...m].map(([value, label]) => ({ value, label })).sort((a, b) => a.label.localeCompare(b.label));
  }, [assignees.data, rows, me]);

  const [, complete] = useMutation(CompleteTaskDocument);
  const [shuffleState, shuffle] = useMutation(ShuffleTasksDocument);
  const [busy, setBusy] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const onComplete = useCallback(
    async (task: Task) => {
      setBusy(task.id);
      const r = await complete({ id: task.id });
      setBusy(null);
      if (r.error) notify({ color: 'red', title: t('errors.title'), message: errorText(t, r.error) });
      else setPatches((p) => ({ ...p, changed: new Map(p.changed).set(task.id, r.data!.completeTask) }));
    },
    [complete, t],
  );

  return (
    <Stack gap="sm">
      <Group justify="space-between" wrap="wrap">
        <Title order={2}>{t('tasks.title')}</Title>
        <Group>
          <Button onClick={() => setCreating(true)}>{t('tasks.create')}</Button>
          {can.shuffle(me.role) && (
            <ConfirmButton
              label={t('tasks.shuffle')}
              title={t('tasks.shuffleTitle')}
              message={t('tasks.shuffleConfirm')}
              confirmLabel={t('tasks.shuffleYes')}
              color="#a34700"
              loading={shuffleState.fetching}
              onConfirm={async () => {
                const r = await shuffle({});
                if (r.error) notify({ color: 'red', title: t('errors.title'), message: errorText(t, r.error) });
                else {
                  notify({
                    color: 'green',
                    title: t('tasks.shuffleDone'),
                    message: t('tasks.reassigned', { count: r.data!.shuffleTasks.reassigned }),
                  });
                  refetch();
                }
              }}
            />
          )}
        </Group>
      </Group>
      <Group wrap="wrap" align="flex-end">
        <SegmentedControl
          aria-label={t('tasks.view')}
          value={view}
          onChange={(v) => set('view', v === 'mine' ? 'mine' : null)}
          data={[
            { value: 'all', label: t('tasks.all') },
            { value: 'mine', label: t('tasks.mine') },
          ]}
        />
        <NativeSelect
          label={t('tasks.status')}
          value={status ?? ''}
          onChange={(e) => set('status', e.currentTarget.value || null)}
          data={[
            { value: '', label: t('tasks.anyStatus') },
            { value: 'OPEN', label: t('status.OPEN') },
            { value: 'DONE', label: t('status.DONE') },
          ]}
        />
        {view === 'all' && !search && (
          <NativeSelect
            label={t('tasks.assignee')}
            value={assigneeId ?? ''}
            onChange={(e) => set('assignee', e.currentTarget.value || null)}
            data={[{ value: '', label: t('tasks.anyone') }, ...assigneeOptions]}
          />
        )}
        <TextInput
          label={t('tasks.search')}
          type="search"
          value={searchText}
          onChange={(e) => setSearchText(e.currentTarget.value)}
          placeholder={t('tasks.searchHint')}
        />
        <NativeSelect label={t('tasks.pageSize')} value={String(size)} onChange={(e) => set('size', e.currentTarget.value)} data={PAGE_SIZES} />
      </Group>
      <ErrorAlert error={result.error} onRetry={refetch} />
      <Table striped highlightOnHover data-testid="task-table" aria-busy={result.fetching}>
        <Table.Caption>{t('tasks.caption', { count: conn?.totalCount ?? 0 })}</Table.Caption>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t('tasks.task')}</Table.Th>
            <Table.Th>{t('tasks.assignee')}</Table.Th>
            <Table.Th>{t('tasks.status')}</Table.Th>
            <Table.Th className="ates-num">{t('tasks.fee')}</Table.Th>
            <Table.Th className="ates-num">{t('tasks.reward')}</Table.Th>
            <Table.Th>{t('tasks.created')}</Table.Th>
            <Table.Th>
              <span className="ates-skip">{t('tasks.actions')}</span>
            </Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {shownRows.map((task) => (
            <TaskRow key={task.id} task={task} me={me.id} lang={i18n.language} timeZone={timeZone} busy={busy === task.id} onComplete={onComplete} />
          ))}
        </Table.Tbody>
      </Table>
      {conn && rows.length === 0 && <Text c="dimmed">{t('tasks.empty')}</Text>}
      <Pager
        page={paging.page}
        hasNext={!!conn?.pageInfo.hasNextPage}
        onPrev={paging.prev}
        onNext={() => paging.next(conn?.pageInfo.endCursor)}
        total={conn?.totalCount}
      />
      <CreateTask opened={creating} onClose={() => setCreating(false)} onCreated={refetch} />
    </Stack>
  );
}

/** One row; rows whose task did not change are not rendered again when a push patches another. */
const TaskRow = memo(function TaskRow({
  task,
  me,
  lang,
  timeZone,
  busy,
  onComplete,
}: {
  task: Task;
  me: string;
  lang: string;
  timeZone: string;
  busy: boolean;
  onComplete: (t: Task) => void;
}) {
  const { t } = useTranslation();
  // Plain cells (styled by app.css like Mantine's): a board of 100 rows renders a fraction of
  // the components it would as Mantine's Td, Text and Badge (docs/benchmarks.md).
  return (
    <tr data-task-id={task.id} className={task.status === 'DONE' ? 'ates-row ates-task-done' : 'ates-row'}>
      <td>
        <div className="ates-title">
          {task.jiraId && <span className="ates-jira">{task.jiraId}</span>}
          {task.title}
        </div>
        <div className="ates-desc" title={task.description}>
          {task.description}
        </div>
      </td>
      <td data-testid="assignee">{task.assignee.id === me ? t('tasks.you') : task.assignee.fullName || task.assignee.username}</td>
      <td data-testid="status">
        <span className={task.status === 'OPEN' ? 'ates-badge ates-open' : 'ates-badge ates-done'}>{t(`status.${task.status}`)}</span>
      </td>
      <td className="ates-num">{task.price ? <Money value={task.price.fee} /> : '—'}</td>
      <td className="ates-num">{task.price ? <Money value={task.price.reward} /> : '—'}</td>
      <td className="ates-time">{formatTime(task.createdAt, lang, timeZone)}</td>
      <td>
        {task.status === 'OPEN' && task.assignee.id === me && (
          <Button size="compact-sm" color="#1e6b2f" loading={busy} aria-label={t('tasks.completeTask', { title: task.title })} onClick={() => onComplete(task)}>
            {t('tasks.complete')}
          </Button>
        )}
      </td>
    </tr>
  );
});

function CreateTask({ opened, onClose, onCreated }: { opened: boolean; onClose: () => void; onCreated: () => void }) {
  const { t } = useTranslation();
  const [v, setV] = useState({ title: '', jiraId: '', description: '' });
  const [local, setLocal] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>(null);
  const [state, create] = useMutation(CreateTaskDocument);
  const server = error ? describe(error).fields : {};
  const fieldError = (k: string) => (local[k] ? t(local[k]) : server[k] ?? server[`input.${k}`]);
  const input = (k: keyof typeof v) => ({
    value: v[k],
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLTextAreaElement>) => setV({ ...v, [k]: e.currentTarget.value }),
    error: fieldError(k),
  });
  return (
    <Modal opened={opened} onClose={onClose} closeButtonProps={{ 'aria-label': t('common.close') }} title={t('tasks.createTitle')} centered size="lg">
      <form
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          const errs = validateTask(v);
          setLocal(errs);
          setError(null);
          if (Object.keys(errs).length) return;
          const r = await create({ input: { title: v.title, jiraId: v.jiraId.trim() || null, description: v.description } });
          if (r.error) return setError(r.error);
          const a = r.data!.createTask.assignee;
          notify({ color: 'green', title: t('tasks.createdOk'), message: t('tasks.assignedTo', { name: a.fullName || a.username }) });
          setV({ title: '', jiraId: '', description: '' });
          onCreated();
          onClose();
        }}
      >
        <Stack>
          <TextInput label={t('tasks.taskTitle')} required data-autofocus {...input('title')} />
          <TextInput label={t('tasks.jiraId')} description={t('tasks.jiraHint')} {...input('jiraId')} />
          <Textarea label={t('tasks.description')} required autosize minRows={3} {...input('description')} />
          {error && !Object.keys(server).length ? <ErrorAlert error={error} /> : null}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t('common.cancel')}
            </Button>
            <Button type="submit" loading={state.fetching}>
              {t('tasks.createSubmit')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

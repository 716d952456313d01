// volsnap doctor: per node, the destinations (reflink, writable, free space) from GET
// /api/storage_node and the catalog checked against the files from GET /api/storage_node/doctor.
import { ApiCallError, EXIT, call, onEach } from './http';
import { noMore, print, printJson, reportErrors, type Ctx } from './context';
import { bytes, table } from './output';

// GET /api/storage_node destinations: destination_id/destination_name (older drafts: id/display_name);
// path and filesystem are shown when the node sends them.
interface NodeDestination {
  destination_id?: string;
  destination_name?: string;
  id?: string;
  display_name?: string;
  path?: string;
  filesystem?: string;
  free_bytes?: number;
  total_bytes?: number;
  reflink?: boolean;
  writable?: boolean;
}

const destId = (d: NodeDestination): string => d.destination_id ?? d.id ?? '?';

interface StorageNodeDoc {
  id?: string;
  version?: string;
  destinations?: NodeDestination[];
  [k: string]: unknown;
}

interface FileCheck {
  orphans: string[];
  missing: string[];
}

export async function cmdDoctor(ctx: Ctx, positionals: string[]): Promise<number> {
  noMore(positionals, 0, 'doctor');
  const reports = await onEach(ctx.nodes, async (node) => {
    const [storageNode, check] = await Promise.all([
      call<StorageNodeDoc>(node, 'GET', '/api/storage_node', ctx),
      call<FileCheck>(node, 'GET', '/api/storage_node/doctor', ctx).catch((e: unknown) => {
        // A node without the check answers 404 for the route itself: say so, do not fail.
        if (e instanceof ApiCallError && e.status === 404) return null;
        throw e;
      }),
    ]);
    return { node, storage_node: storageNode, check };
  });
  let code = reportErrors(ctx, reports.map((r) => r.error).filter((e): e is Error => e !== undefined));
  const ok = reports.flatMap((r) => (r.value ? [r.value] : []));
  let problems = false;
  for (const r of ok) {
    const dests = r.storage_node.destinations ?? [];
    if (dests.some((d) => d.writable === false)) problems = true;
    if (r.check && (r.check.orphans.length > 0 || r.check.missing.length > 0)) problems = true;
  }
  if (ctx.json) {
    printJson(ctx, ok.map((r) => ({ ...r, problems: problemsOf(r.storage_node, r.check) })));
  } else {
    for (const r of ok) {
      const sn = r.storage_node;
      print(ctx, `node ${r.node}${sn.id ? ` (${sn.id}${sn.version ? `, volsnapd ${sn.version}` : ''})` : ''}\n`);
      const dests = sn.destinations ?? [];
      const yesNo = (b: boolean | undefined) => (b === undefined ? '-' : b ? 'yes' : 'NO');
      const withPath = dests.some((d) => d.path !== undefined);
      const withFs = dests.some((d) => d.filesystem !== undefined);
      print(
        ctx,
        table(
          ['  DESTINATION', 'NAME', ...(withPath ? ['PATH'] : []), ...(withFs ? ['FILESYSTEM'] : []), 'REFLINK', 'WRITABLE', 'FREE', 'TOTAL'],
          dests.map((d) => [
            `  ${destId(d)}`,
            d.destination_name ?? d.display_name ?? '-',
            ...(withPath ? [d.path ?? '-'] : []),
            ...(withFs ? [d.filesystem ?? '-'] : []),
            yesNo(d.reflink),
            yesNo(d.writable),
            bytes(d.free_bytes),
            bytes(d.total_bytes),
          ]),
        ),
      );
      if (!r.check) print(ctx, '  catalog vs files: this node does not offer the check (GET /api/storage_node/doctor)\n');
      else {
        print(ctx, `  catalog vs files: ${r.check.orphans.length} orphan file(s), ${r.check.missing.length} missing file(s)\n`);
        for (const o of r.check.orphans) print(ctx, `    orphan   ${o}\n`);
        for (const m of r.check.missing) print(ctx, `    missing  ${m}\n`);
      }
      for (const p of problemsOf(sn, r.check)) print(ctx, `  problem: ${p}\n`);
    }
  }
  if (code === EXIT.ok && problems) code = EXIT.doctorProblems;
  return code;
}

function problemsOf(sn: StorageNodeDoc, check: FileCheck | null): string[] {
  const out: string[] = [];
  for (const d of sn.destinations ?? []) if (d.writable === false) out.push(`destination '${destId(d)}' is not writable`);
  if (check) {
    if (check.orphans.length > 0) out.push(`${check.orphans.length} file(s) in destinations that no snapshot claims`);
    if (check.missing.length > 0) out.push(`${check.missing.length} snapshot(s) whose file is missing`);
  }
  return out;
}

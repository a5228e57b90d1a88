/**
 * REST paths of a job's resources, built in one place so the routes in app.ts and the views that link
 * to them agree. Paths are relative to the replica's REST root; every id segment is URL-encoded.
 */
import type { JobDetails } from '../jobmaster/types';

/** `/jobs/<jobId>` */
export function jobPath(jobId: string): string {
  return `/jobs/${encodeURIComponent(jobId)}`;
}

/** `/jobs/<jobId>/vertices/<vertexId>/subtasks/<subtaskIndex>/attempts/<attempt>/log`: one attempt's task log. */
export function attemptLogPath(jobId: string, vertexId: string, subtaskIndex: number, attempt: number): string {
  return `${jobPath(jobId)}/vertices/${encodeURIComponent(vertexId)}/subtasks/${subtaskIndex}/attempts/${attempt}/log`;
}

/**
 * The job details a client sees: each subtask gets `log`, the REST path of its current attempt's log.
 * Returns a copy; the details held by the Dispatcher (a live view or the completed-jobs cache) stay as they are.
 */
export function withAttemptLogUrls(details: JobDetails): JobDetails {
  return {
    ...details,
    vertices: details.vertices.map((v) => ({
      ...v,
      subtasks: v.subtasks.map((s) => ({ ...s, log: attemptLogPath(details.jid, v.id, s.subtask, s.attempt) })),
    })),
  };
}

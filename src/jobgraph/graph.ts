import { ValidationError } from '../http/errors';
import type { JobGraph, JobVertex } from './types';

type Edges = Pick<JobVertex, 'id' | 'inputs'>;

/**
 * A cycle in data-flow order (producer -> consumer), first vertex repeated at the end, or null.
 * Inputs naming unknown vertices are ignored here; parseJobGraph reports them first.
 */
export function findCycle(vertices: readonly Edges[]): string[] | null {
  const inputsOf = new Map(vertices.map((v) => [v.id, v.inputs ?? []]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];

  const visit = (id: string): string[] | null => {
    if (state.get(id) === 'done' || !inputsOf.has(id)) return null;
    if (state.get(id) === 'visiting') return [...stack.slice(stack.indexOf(id)), id].reverse();
    state.set(id, 'visiting');
    stack.push(id);
    for (const input of inputsOf.get(id)!) {
      const cycle = visit(input);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(id, 'done');
    return null;
  };

  for (const v of vertices) {
    const cycle = visit(v.id);
    if (cycle) return cycle;
  }
  return null;
}

/**
 * Vertex ids so that every vertex comes after all of its inputs. Ties keep the order of `vertices`,
 * so the same graph always schedules the same way.
 */
export function topologicalOrder(graph: Pick<JobGraph, 'vertices'>): string[] {
  const waitingOn = new Map(graph.vertices.map((v) => [v.id, new Set(v.inputs ?? [])]));
  const consumers = new Map<string, string[]>(graph.vertices.map((v) => [v.id, []]));
  for (const v of graph.vertices) for (const input of new Set(v.inputs ?? [])) consumers.get(input)?.push(v.id);

  const order = graph.vertices.filter((v) => waitingOn.get(v.id)!.size === 0).map((v) => v.id);
  for (let i = 0; i < order.length; i++) {
    for (const consumer of consumers.get(order[i])!) {
      const waiting = waitingOn.get(consumer)!;
      waiting.delete(order[i]);
      if (waiting.size === 0) order.push(consumer);
    }
  }
  if (order.length !== graph.vertices.length) {
    const cycle = findCycle(graph.vertices);
    throw new ValidationError(cycle ? `cycle: ${cycle.join(' -> ')}` : 'some vertex inputs name no vertex of the graph');
  }
  return order;
}

/**
 * JSON with object keys sorted at every level (arrays keep their order): two graphs are "the same
 * graph" for an idempotent resubmission exactly when their canonical JSON of the normalized form is equal.
 */
export function canonicalJson(graph: JobGraph): string {
  return JSON.stringify(graph, (_key, value: unknown) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, (value as Record<string, unknown>)[k]]))
      : value,
  );
}

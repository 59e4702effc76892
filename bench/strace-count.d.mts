export function storeOperations(traceText: string, dir: string): string[];

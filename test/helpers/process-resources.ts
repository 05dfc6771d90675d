/**
 * What a local process holds open and has used, read from /proc (Linux): its file descriptors, its
 * TCP sockets with their states and peers, its CPU time. Fault tests compare these before and after a scenario to
 * prove that nothing leaked (no descriptor growth, no half-closed sockets left in CLOSE_WAIT).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export function openFdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export interface TcpSocket {
  localPort: number;
  remotePort: number;
  /** ESTABLISHED, CLOSE_WAIT, LISTEN, … */
  state: string;
}

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

/** The TCP sockets (IPv4 and IPv6) whose descriptors `pid` holds. */
export function tcpSockets(pid: number): TcpSocket[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // closed while we looked
    }
  }
  const sockets: TcpSocket[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !inodes.has(fields[9]!)) continue;
      sockets.push({
        localPort: Number.parseInt(fields[1]!.split(':')[1]!, 16),
        remotePort: Number.parseInt(fields[2]!.split(':')[1]!, 16),
        state: TCP_STATES[fields[3]!] ?? fields[3]!,
      });
    }
  }
  return sockets;
}

/** Polls `probe` until it returns true or `timeoutMs` passed; returns the last result. */
export async function eventually(probe: () => boolean, timeoutMs: number, intervalMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (probe()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** CPU time (user + system) a process and its child processes (nginx workers) have used so far, in seconds. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesized command name; utime and stime are fields 14 and 15 (clock ticks, 100/s).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  let seconds = (Number(fields[11]) + Number(fields[12])) / 100;
  let children = '';
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    // Kernel without CONFIG_PROC_CHILDREN: count the process alone.
  }
  for (const child of children.split(' ').filter((text) => text !== '')) {
    try {
      seconds += cpuSecondsOf(Number(child));
    } catch {
      // exited meanwhile
    }
  }
  return seconds;
}

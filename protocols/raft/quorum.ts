// Quorum arithmetic for a majority configuration: the committed index from per-voter match
// indexes, and the outcome of a vote. Pure functions of their arguments; no node state here, so
// a joint configuration (JointConfig, below) is built from two of these.

export const VoteResult = { pending: 0, lost: 1, won: 2 } as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

export class MajorityConfig {
  readonly voters: readonly number[];
  /** Reused by committedIndex() so the leader's hot path allocates nothing. */
  private readonly scratch: number[];

  constructor(voters: readonly number[]) {
    if (voters.length === 0) throw new RangeError('a majority configuration needs at least one voter');
    if (new Set(voters).size !== voters.length) throw new RangeError(`voter ids must be unique, got ${voters.join(', ')}`);
    this.voters = [...voters].sort((a, b) => a - b);
    this.scratch = new Array<number>(voters.length).fill(0);
  }

  get size(): number {
    return this.voters.length;
  }

  quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  /**
   * The largest index that a majority of voters have acknowledged. A voter that `matchOf`
   * does not know counts as 0, so an unknown voter can only hold the commit back.
   */
  committedIndex(matchOf: (id: number) => number): number {
    const s = this.scratch;
    for (let i = 0; i < this.voters.length; i++) s[i] = matchOf(this.voters[i]!);
    s.sort((a, b) => b - a);
    return s[this.quorum() - 1]!;
  }

  /** Won once a majority granted, lost once a majority can no longer grant, else pending. */
  voteResult(votes: ReadonlyMap<number, boolean>): VoteResult {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    if (granted >= q) return VoteResult.won;
    if (this.voters.length - rejected < q) return VoteResult.lost;
    return VoteResult.pending;
  }

  /** True when the voters for which `active` holds form a majority (CheckQuorum, read rounds). */
  hasQuorum(active: (id: number) => boolean): boolean {
    let n = 0;
    for (const id of this.voters) if (active(id)) n++;
    return n >= this.quorum();
  }
}

/**
 * Joint consensus (C_old,new): every decision needs a majority of the incoming voters and, while
 * joint, a majority of the outgoing ones too. With no outgoing half it is a majority config.
 */
export class JointConfig {
  readonly incoming: MajorityConfig;
  readonly outgoing: MajorityConfig | null;

  constructor(incoming: readonly number[], outgoing: readonly number[] = []) {
    this.incoming = new MajorityConfig(incoming);
    this.outgoing = outgoing.length > 0 ? new MajorityConfig(outgoing) : null;
  }

  /** True when `id` is the only voter of every half: it decides alone. */
  onlyVoter(id: number): boolean {
    const alone = (c: MajorityConfig) => c.size === 1 && c.voters[0] === id;
    return alone(this.incoming) && (this.outgoing === null || alone(this.outgoing));
  }

  committedIndex(matchOf: (id: number) => number): number {
    const a = this.incoming.committedIndex(matchOf);
    return this.outgoing === null ? a : Math.min(a, this.outgoing.committedIndex(matchOf));
  }

  voteResult(votes: ReadonlyMap<number, boolean>): VoteResult {
    const a = this.incoming.voteResult(votes);
    if (this.outgoing === null) return a;
    const b = this.outgoing.voteResult(votes);
    if (a === VoteResult.lost || b === VoteResult.lost) return VoteResult.lost;
    if (a === VoteResult.won && b === VoteResult.won) return VoteResult.won;
    return VoteResult.pending;
  }

  hasQuorum(active: (id: number) => boolean): boolean {
    return this.incoming.hasQuorum(active) && (this.outgoing === null || this.outgoing.hasQuorum(active));
  }
}

/// Execution path 4 of 4: the next group started the moment a held group commits, from the
/// committing worker's thread, on an idle worker's connection lent for it (`LentConnection`);
/// the idle worker is then handed the started group and reads its results.
///
/// Woken first, the idle worker would have had to take the jobs and send them itself: Postgres
/// would only start on them after a thread wake-up, while the cores may idle between held
/// groups. Sent from here, the wake-up overlaps Postgres running the group.
enum HeldGroupHandover {
    /// Starts `jobs` (what the lent worker's `next` gave it) on the lent connection; returns the
    /// job to hand over to that worker, nil when nothing is left for it.
    static func start(_ jobs: [PoolJob], on lent: borrowing LentConnection) -> PoolJob? {
        let live = PoolJob.failingExpired(jobs)
        guard live.count >= 2 else { return live.first }  // a single job: the worker runs it as usual
        switch GroupCommit.start(live.map(\.groupCall), on: lent.connection) {
        case .started(let group): return PoolJob(deadline: live[0].deadline, work: .finishGroup(group))
        case .finished: return nil
        }
    }
}

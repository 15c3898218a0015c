import ArgumentParser
import StepRunClient
import StepRunCore

/// Where the daemon clients' tasks run.
enum ClientTasks: String, ExpressibleByArgument, Sendable {
    /// On the event loop of the client's connection (`StepRunClient.taskExecutor`): a call is
    /// written and its answer resumed on one thread.
    case eventLoop = "event-loop"
    /// On the Swift concurrency pool: every call hops to the event loop and back.
    case pool
}

/// Runs a workload against steprund: `clients` concurrent tasks sharing `connections` client
/// connections (client `i` uses connection `i % connections`), as worker processes would.
enum DaemonDriver {
    static func run(
        plan: WorkloadPlan, clients: Int, connections: Int, target: StepRunClient.Target, tasks: ClientTasks,
        timing: Timing, sampler: SystemSampler
    ) async throws -> WorkerTally {
        let pool = (0..<connections).map { _ in
            StepRunClient(target: target, configuration: .init(clientName: "steprun-bench"))
        }
        do {
            for client in pool { try await client.connect() }
        } catch {
            for client in pool { await client.close() }
            throw BenchError("cannot connect to steprund at \(target): \(error)")
        }
        let window = RunWindow(startingAt: .now, warmup: timing.warmup, duration: timing.duration)
        sampler.start(window)
        let tally = await withTaskGroup(of: WorkerTally.self) { group in
            for index in 0..<clients {
                let client = pool[index % connections]
                let body: @Sendable () async -> WorkerTally = {
                    await clientLoop(plan: plan, index: index, window: window, timeout: timing.callTimeout, client: client)
                }
                switch tasks {
                case .eventLoop: group.addTask(executorPreference: client.taskExecutor, operation: body)
                case .pool: group.addTask(operation: body)
                }
            }
            var total = WorkerTally()
            for await tally in group { total.merge(tally) }
            return total
        }
        for client in pool { await client.close() }
        return tally
    }

    private static func clientLoop(
        plan: WorkloadPlan, index: Int, window: RunWindow, timeout: Duration, client: StepRunClient
    ) async -> WorkerTally {
        var workload = plan.makeWorkload(client: index)
        var tally = WorkerTally()
        while ContinuousClock.now < window.end {
            let request = workload.next()
            let started = ContinuousClock.now
            let outcome: Result<StoreResult, StepRunError>
            do {
                outcome = .success(try await client.perform(request, deadline: started.advanced(by: timeout)))
            } catch let error as StepRunError {
                outcome = .failure(error)
            } catch {
                outcome = .failure(.internal("\(error)"))
            }
            let finished = ContinuousClock.now
            let problem = workload.check(outcome)
            tally.record(operation: request.operationName, started: started, finished: finished, window: window, problem: problem)
            if case .failure = outcome {
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        return tally
    }
}

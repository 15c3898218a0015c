import Foundation
import StepRunClient
import StepRunCore
import Testing
import StepRunTesting

/// psql holding `LOCK TABLE … IN ACCESS EXCLUSIVE MODE` in an open transaction until `release`.
private final class PsqlTableLock: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()

    init(url: String, table: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url]
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data("BEGIN;\nLOCK TABLE \(table) IN ACCESS EXCLUSIVE MODE;\n".utf8))
    }

    func release() {
        input.fileHandleForWriting.write(Data("ROLLBACK;\n\\q\n".utf8))
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

@Suite("Table lock", .serialized)
struct TableLockTests {
    @Test("step_runs locked: 1 s calls get DEADLINE_EXCEEDED, their statements are cancelled while the lock is held, health answers within its deadline, and nothing they sent is stored")
    func lockedTable() async throws {
        let database = try testDatabaseURL()
        let schema = "steprun_lock_\(UUID().uuidString.prefix(8).lowercased())"
        let socket = temporaryPath("lock") + ".sock"
        let daemon = try DaemonProcess([
            Binaries.steprund, "serve", "--database-url", database, "--schema", schema, "--pool-size", "2",
            "--unix-socket", socket, "--log-level", "warning",
        ])
        let target = StepRunClient.Target.unix(path: socket)
        let client = StepRunClient(target: target)
        #expect(await eventually(timeout: .seconds(30)) { (try? await client.health().serving) == true }, "\(daemon.output)")

        func psql(_ sql: String) async -> String {
            await shell("psql -X -A -t -q '\(database)' -c \"\(sql)\"").output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let lock = try PsqlTableLock(url: database, table: "\(schema).step_runs")
        #expect(await eventually {
            await psql("""
                SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace \
                WHERE n.nspname = '\(schema)' AND c.relname = 'step_runs' AND l.mode = 'AccessExclusiveLock' AND l.granted
                """) == "1"
        })

        let runID = UUID()
        let outcomes = await withTaskGroup(of: (StatusCode?, Duration).self) { group in
            for index in 0..<6 {
                group.addTask {
                    let started = ContinuousClock.now
                    do {
                        _ = try await client.beginStep(runID: runID, step: "blocked-\(index)", timeout: .seconds(1))
                        return (nil, ContinuousClock.now - started)
                    } catch let error as StepRunError {
                        return (error.code, ContinuousClock.now - started)
                    } catch {
                        return (.internal, ContinuousClock.now - started)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.allSatisfy { $0.0 == .deadlineExceeded }, "\(outcomes)")
        // Answered by the daemon's deadline, not by the lock's release (generous for a loaded machine).
        #expect(outcomes.allSatisfy { $0.1 < .seconds(8) }, "\(outcomes)")

        // While the lock is still held, no daemon connection waits on it any more.
        #expect(await eventually(timeout: .seconds(10)) {
            await psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'steprund' AND wait_event_type = 'Lock'") == "0"
        })
        let healthStarted = ContinuousClock.now
        let reply = try await client.health(timeout: .seconds(4))
        let healthTook = ContinuousClock.now - healthStarted
        #expect(healthTook < .seconds(4), "health took \(healthTook)")
        #expect(!reply.serving)
        #expect(!reply.message.isEmpty)
        print("table lock: \(outcomes.count) calls DEADLINE_EXCEEDED; health in \(healthTook): \(reply.message)")

        lock.release()
        #expect(await eventually { (try? await client.health().serving) == true })
        _ = try await client.beginStep(runID: runID, step: "after")
        #expect(try await client.stepStatuses(runID: runID) == ["after": .running], "a cancelled call's write was committed")
        await client.close()
        await daemon.terminate()
        _ = await psql("DROP SCHEMA \(schema) CASCADE")
    }
}

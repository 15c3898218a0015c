import Foundation
import StepRunCore
import StepRunPostgres
import Testing
import StepRunTesting

/// What a list read in pages shows of a run that changes between its pages (docs/STORE.md,
/// "Reading large runs"), and how the keyset cursor follows each list's order.
@Suite("Pages of a changing run")
struct PageConsistencyTests {
    @Test("a step that completes between two pages of completed_steps appears on a later page, and no step twice")
    func completionBetweenPages() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        var ids: [UUID] = []
        for step in ["a", "b", "c", "late"] { ids.append(try await store.beginStep(runID: runID, step: step).0.id) }
        for id in ids.prefix(3) { try await store.completeStep(stepRunID: id, output: [:]) }

        var pages = store.completedStepsList(runID: runID, pageSize: 2).pages.makeAsyncIterator()
        let first = try #require(try await pages.next())
        try await store.completeStep(stepRunID: ids[3], output: [:])
        var rest: [String] = []
        while let page = try await pages.next() { rest += page.elements }

        #expect(first.elements == ["a", "b"])
        #expect(rest == ["c", "late"])
    }

    @Test("compensation pages follow the latest completed attempt, then inserted_at and id, all descending")
    func compensationPagesFollowAttempts() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        var stepRuns: [StepRun] = []
        for step in ["first", "second", "third", "fourth"] {
            let (stepRun, _) = try await store.beginStep(runID: runID, step: step)
            let attempt = try await store.beginAttempt(stepRunID: stepRun.id)
            try await store.completeStep(stepRunID: stepRun.id, output: [:])
            stepRuns.append(stepRun)
            if step != "first" { try await store.completeAttempt(attemptID: attempt.id) }
        }
        // "first" completed its step earliest but its attempt last: it is the newest effect.
        let first = try #require(try await store.latestAttempt(stepRunID: stepRuns[0].id))
        try await store.completeAttempt(attemptID: first.id)

        var listed: [String] = []
        for try await page in store.completedStepRunsForCompensationList(runID: runID, pageSize: 1).pages {
            #expect(page.elements.count == 1)
            listed += page.elements.map(\.step)
        }
        #expect(listed == ["first", "fourth", "third", "second"])
    }

    @Test("the in-process store pages by count alone and returns every element of a run over one page")
    func inProcessPagesByCount() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let steps = (0..<1_005).map { String(format: "s%04d", $0) }
        _ = try await store.scheduleSteps(runID: runID, steps: steps.map { ScheduledStep(step: $0) })

        var sizes: [Int] = []
        for try await page in store.stepStatusesList(runID: runID).pages { sizes.append(page.elements.count) }
        #expect(sizes == [PageRequest.maxSize, 5])
        #expect(try await store.stepStatuses(runID: runID).count == steps.count)
    }
}

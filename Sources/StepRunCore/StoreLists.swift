import Foundation

/// One page of a list: its elements in the list's order, and the token of the next page.
public struct ListPage<Element: Sendable>: Sendable {
    public var elements: [Element]
    /// Pass to the next call to continue; nil when this was the last page.
    public var next: PageToken?

    public init(elements: [Element], next: PageToken?) {
        self.elements = elements
        self.next = next
    }
}

/// One entry of `stepStatuses`.
public struct StepStatusEntry: Sendable, Hashable {
    public var step: String
    public var status: StepStatus

    public init(step: String, status: StepStatus) {
        self.step = step
        self.status = status
    }
}

/// A list read page by page as it is iterated: each page is one call, made when the elements of
/// the previous one have been consumed, so a caller can walk a run of any size holding one page.
/// Iterate it for elements, `pages` for whole pages, or `collect()` for everything.
///
/// Each page is read in its own snapshot (docs/STORE.md, "Reading large runs"); a call that fails
/// ends the iteration with its error, and iterating again starts over from the first page.
public struct StoreList<Element: Sendable>: AsyncSequence, Sendable {
    public typealias Failure = any Error
    let fetch: @Sendable (PageToken?) async throws -> ListPage<Element>

    public init(fetch: @escaping @Sendable (PageToken?) async throws -> ListPage<Element>) {
        self.fetch = fetch
    }

    /// The pages, in order; the last one has no `next`.
    public var pages: Pages { Pages(fetch: fetch) }

    /// Every element, following the pages to the end.
    public func collect() async throws -> [Element] {
        var all: [Element] = []
        for try await page in pages { all.append(contentsOf: page.elements) }
        return all
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(pages: pages.makeAsyncIterator())
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var pages: Pages.AsyncIterator
        var buffered: [Element] = []
        var index = 0

        public mutating func next() async throws -> Element? {
            while index == buffered.count {
                guard let page = try await pages.next() else { return nil }
                buffered = page.elements
                index = 0
            }
            defer { index += 1 }
            return buffered[index]
        }
    }

    public struct Pages: AsyncSequence, Sendable {
        public typealias Failure = any Error
        let fetch: @Sendable (PageToken?) async throws -> ListPage<Element>

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(fetch: fetch) }

        public struct AsyncIterator: AsyncIteratorProtocol {
            let fetch: @Sendable (PageToken?) async throws -> ListPage<Element>
            var token: PageToken?
            var done = false

            public mutating func next() async throws -> ListPage<Element>? {
                guard !done else { return nil }
                let page = try await fetch(token)
                token = page.next
                done = page.next == nil
                return page
            }
        }
    }
}

extension StepRunStore {
    /// A list whose pages come from `request` and are read out of the result by `page`; each
    /// page's call gets the deadline `deadline()` returns when it starts.
    private func list<Element: Sendable>(
        pageSize: Int?, deadline: @escaping @Sendable () -> ContinuousClock.Instant?,
        _ request: @escaping @Sendable (PageRequest) -> StoreRequest,
        _ page: @escaping @Sendable (StoreResult) -> ListPage<Element>?
    ) -> StoreList<Element> {
        StoreList { token in
            let call = request(PageRequest(size: pageSize, after: token))
            let result = try await perform(call, deadline: deadline())
            guard let elements = page(result) else {
                throw StepRunError.internal("unexpected result \(result) for \(call.operationName)")
            }
            return elements
        }
    }

    /// `timeout` from the start of each page's call: a list iterated page by page has no end in time.
    private static func perPage(_ timeout: Duration?) -> @Sendable () -> ContinuousClock.Instant? {
        { timeout.map { ContinuousClock.now.advanced(by: $0) } }
    }

    /// `timeout` from now, for every page: a whole-list read ends within it, however many pages.
    private static func once(_ timeout: Duration?) -> @Sendable () -> ContinuousClock.Instant? {
        let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
        return { deadline }
    }

    /// The run's completed steps in completion order, read page by page as it is iterated.
    /// `timeout` applies to each page's call; `pageSize` nil lets the store fill each page.
    public func completedStepsList(runID: UUID, pageSize: Int? = nil, timeout: Duration? = nil) -> StoreList<String> {
        completedSteps(runID, pageSize, Self.perPage(timeout))
    }

    private func completedSteps(_ runID: UUID, _ pageSize: Int?, _ deadline: @escaping @Sendable () -> ContinuousClock.Instant?) -> StoreList<String> {
        list(pageSize: pageSize, deadline: deadline, { .completedSteps(runID: runID, page: $0) }) {
            guard case .steps(let names, let next) = $0 else { return nil }
            return ListPage(elements: names, next: next)
        }
    }

    /// The outputs of the run's completed steps in completion order (a null output reads as `{}`),
    /// read page by page as it is iterated.
    public func completedOutputsList(runID: UUID, pageSize: Int? = nil, timeout: Duration? = nil) -> StoreList<JSONPayload> {
        completedOutputs(runID, pageSize, Self.perPage(timeout))
    }

    private func completedOutputs(_ runID: UUID, _ pageSize: Int?, _ deadline: @escaping @Sendable () -> ContinuousClock.Instant?) -> StoreList<JSONPayload> {
        list(pageSize: pageSize, deadline: deadline, { .completedOutputs(runID: runID, page: $0) }) {
            guard case .outputs(let outputs, let next) = $0 else { return nil }
            return ListPage(elements: outputs, next: next)
        }
    }

    /// The run's completed step runs, most recently completed first (saga undo order), read page by
    /// page as it is iterated.
    public func completedStepRunsForCompensationList(runID: UUID, pageSize: Int? = nil, timeout: Duration? = nil) -> StoreList<StepRun> {
        compensation(runID, pageSize, Self.perPage(timeout))
    }

    private func compensation(_ runID: UUID, _ pageSize: Int?, _ deadline: @escaping @Sendable () -> ContinuousClock.Instant?) -> StoreList<StepRun> {
        list(pageSize: pageSize, deadline: deadline, { .completedStepRunsForCompensation(runID: runID, page: $0) }) {
            guard case .stepRuns(let stepRuns, let next) = $0 else { return nil }
            return ListPage(elements: stepRuns, next: next)
        }
    }

    /// The status of every persisted step of the run, by step name in byte order, read page by page.
    public func stepStatusesList(runID: UUID, pageSize: Int? = nil, timeout: Duration? = nil) -> StoreList<StepStatusEntry> {
        stepStatuses(runID, pageSize, Self.perPage(timeout))
    }

    private func stepStatuses(_ runID: UUID, _ pageSize: Int?, _ deadline: @escaping @Sendable () -> ContinuousClock.Instant?) -> StoreList<StepStatusEntry> {
        list(pageSize: pageSize, deadline: deadline, { .stepStatuses(runID: runID, page: $0) }) {
            guard case .statuses(let statuses, let next) = $0 else { return nil }
            let entries = statuses.map { StepStatusEntry(step: $0.key, status: $0.value) }
                .sorted { $0.step.utf8.lexicographicallyPrecedes($1.step.utf8) }
            return ListPage(elements: entries, next: next)
        }
    }

    /// Every attempt of a step run, by number, read page by page as it is iterated.
    public func listAttemptsList(stepRunID: UUID, pageSize: Int? = nil, timeout: Duration? = nil) -> StoreList<StepAttempt> {
        attempts(stepRunID, pageSize, Self.perPage(timeout))
    }

    private func attempts(_ stepRunID: UUID, _ pageSize: Int?, _ deadline: @escaping @Sendable () -> ContinuousClock.Instant?) -> StoreList<StepAttempt> {
        list(pageSize: pageSize, deadline: deadline, { .listAttempts(stepRunID: stepRunID, page: $0) }) {
            guard case .attempts(let attempts, let next) = $0 else { return nil }
            return ListPage(elements: attempts, next: next)
        }
    }

    // The whole lists: every page, followed to the end, all within one `timeout` from the call.

    /// The run's completed steps in completion order.
    public func completedSteps(runID: UUID, timeout: Duration? = nil) async throws -> [String] {
        try await completedSteps(runID, nil, Self.once(timeout)).collect()
    }

    /// The outputs of the run's completed steps in completion order (a null output reads as `{}`).
    public func completedOutputs(runID: UUID, timeout: Duration? = nil) async throws -> [JSONPayload] {
        try await completedOutputs(runID, nil, Self.once(timeout)).collect()
    }

    /// The run's completed step runs, most recently completed first (saga undo order).
    public func completedStepRunsForCompensation(runID: UUID, timeout: Duration? = nil) async throws -> [StepRun] {
        try await compensation(runID, nil, Self.once(timeout)).collect()
    }

    /// The status of every persisted step of the run.
    public func stepStatuses(runID: UUID, timeout: Duration? = nil) async throws -> [String: StepStatus] {
        var all: [String: StepStatus] = [:]
        for try await page in stepStatuses(runID, nil, Self.once(timeout)).pages {
            for entry in page.elements { all[entry.step] = entry.status }
        }
        return all
    }

    /// Every attempt of a step run, by number.
    public func listAttempts(stepRunID: UUID, timeout: Duration? = nil) async throws -> [StepAttempt] {
        try await attempts(stepRunID, nil, Self.once(timeout)).collect()
    }
}

import StepRunCore

/// Polls `condition` until it holds or `timeout` passes, then answers whether it held: the one
/// way the suites wait for something to happen, never a fixed sleep. Timeouts are generous: the
/// whole test bundle shares two cores (under AddressSanitizer too), and a passing condition
/// returns at once anyway.
public func eventually(
    timeout: Duration = .seconds(20), every interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let end = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < end {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}

/// Returns the `StepRunError` `body` throws, or nil when it throws nothing (any other error is
/// reported as an INTERNAL one naming it).
public func storeError(_ body: () async throws -> Void) async -> StepRunError? {
    do {
        try await body()
        return nil
    } catch let error as StepRunError {
        return error
    } catch {
        return .internal("not a StepRunError: \(error)")
    }
}

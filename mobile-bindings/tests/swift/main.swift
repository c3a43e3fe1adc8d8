// A tablet through the generated Swift bindings, as the iOS app calls them:
// identity and enrolment, store, cases, typed errors and async syncs with a
// real sync server. Compiled with the generated GuichetMobile.swift into one
// program and linked against the built library by
// mobile-bindings/tests/foreign.rs, which sets GUICHET_SERVER_URL,
// GUICHET_SERVER_BIN, GUICHET_SERVER_DATA and GUICHET_TEST_DIR. It exits
// non-zero on the first failed check.

import Foundation

let env = ProcessInfo.processInfo.environment
let work = env["GUICHET_TEST_DIR"]!
let serverUrl = env["GUICHET_SERVER_URL"]!
let unit = "unit-swift-kaolack"
// Nothing listens on the discard port: a sync there fails at once.
let deadUrl = "http://127.0.0.1:9"

func check(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) {
    if !condition {
        FileHandle.standardError.write("FAILED (main.swift:\(line)): \(message())\n".data(using: .utf8)!)
        exit(1)
    }
}

func step(_ message: String) {
    print("ok - \(message)")
}

/// The error `body` threw, checked by `matches`; fails if it threw nothing.
func refused(
    _ what: String, line: Int = #line, _ body: () throws -> Void,
    _ matches: (GuichetError) -> Bool
) {
    do {
        try body()
        check(false, "\(what): nothing was thrown", line: line)
    } catch let error as GuichetError {
        check(matches(error), "\(what): got \(error)", line: line)
    } catch {
        check(false, "\(what): not a GuichetError: \(error)", line: line)
    }
}

/// The administrator enrols the public key the tablet shows.
func enrol(_ identity: DeviceIdentity) throws -> Enrolment {
    let admin = Process()
    admin.executableURL = URL(fileURLWithPath: env["GUICHET_SERVER_BIN"]!)
    admin.arguments = [
        "enrol", "--data-dir", env["GUICHET_SERVER_DATA"]!, "--public-key", identity.publicKey(),
        "--agent", "agent-swift", "--role", "tablet", "--unit", unit,
    ]
    let printed = Pipe()
    admin.standardOutput = printed
    try admin.run()
    let json = String(decoding: printed.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    admin.waitUntilExit()
    check(admin.terminationStatus == 0, "enrol failed")
    return try identity.enrol(enrolmentJson: json, serverUrl: serverUrl)
}

func newCase(_ unit: String) -> NewCase {
    NewCase(
        service: "etat-civil", requesterPhone: "+221771234567", requesterName: "Fatou Sarr",
        requesterLanguage: "wo", locality: "Kaolack", channel: .field, unit: unit,
        priority: .normal, status: .received, description: "Extrait de naissance")
}

do {
    let identity = try DeviceIdentity.loadOrCreate(dir: work + "/device")
    check(identity.enrolment() == nil, "enrolled before enrol")
    let enrolment = try enrol(identity)
    check(enrolment.units == [unit] && enrolment.role == "tablet", "enrolment: \(enrolment)")
    // What the app does at its next start: the key and enrolment from disk.
    let again = try DeviceIdentity.loadOrCreate(dir: work + "/device")
    check(again.publicKey() == identity.publicKey() && again.enrolment() == enrolment, "reloaded")
    let path = work + "/cases.db"
    let store = try CaseStore.open(path: path, identity: again)
    step("a device identity is enrolled with the server's CLI, reloaded and opens a store")

    let created = try store.createCase(newCase: newCase(unit))
    check(isValidReference(reference: created.reference), "reference \(created.reference)")
    let moved = try store.updateCase(id: created.id, changes: [.locality(value: "Touba")])
    check(moved.locality == "Touba", "update: \(moved.locality)")
    let detail = try store.getCase(id: created.id)
    check(detail.case.locality == "Touba" && detail.conflicts.isEmpty, "getCase")
    check(try store.listCases(query: CaseQuery(unit: unit)).map { $0.id } == [created.id], "listCases")
    check(try store.findByReference(reference: created.reference).id == created.id, "findByReference")
    check(try store.countCases() == 1, "countCases")
    step("a case is created, edited, read back, listed and found by its reference")

    refused("a unit outside the enrolment", { _ = try store.createCase(newCase: newCase("unit-elsewhere")) }) {
        if case .InvalidInput(let message) = $0 { return message.hasPrefix("unit:") }
        return false
    }
    let every: [CaseStatus] = [.received, .assigned, .inProgress, .waitingForCitizen, .resolved, .closed, .cancelled]
    let forbidden = every.first { $0 != .received && !nextStatuses(status: .received).contains($0) }!
    refused("a status outside the workflow", { _ = try store.changeStatus(id: created.id, status: forbidden) }) {
        if case .InvalidTransition = $0 { return true }
        return false
    }
    refused("an unknown case", { _ = try store.getCase(id: "21-999") }) {
        if case .NotFound = $0 { return true }
        return false
    }
    refused("the same file opened twice", { _ = try CaseStore.open(path: path, identity: identity) }) {
        if case .InvalidInput = $0 { return true }
        return false
    }
    step("typed errors: InvalidInput (unit, second open), InvalidTransition, NotFound")

    let progress = try await store.sync(listener: nil)
    check(progress.opsSent > 0, "sent: \(progress)")
    let synced = try store.syncStatus()
    check(synced.lastSuccessMs != nil && synced.lastError == nil && synced.pendingOps == 0, "synced: \(synced)")
    step("an async sync with the real server sends the case (\(progress.opsSent) operations)")

    _ = try store.updateCase(id: created.id, changes: [.assignee(value: "agent-swift")])
    try store.setServerUrl(url: deadUrl)
    try store.setSyncSettings(settings: SyncSettings(maxAttempts: 1, firstBackoffMs: 10, maxBackoffMs: 10))
    do {
        _ = try await store.sync(listener: nil)
        check(false, "a sync against nothing succeeded")
    } catch GuichetError.Network(let message) {
        check(!message.isEmpty, "Network without a message")
    }
    let status = try store.syncStatus()
    check(!status.syncing && status.lastError != nil && status.pendingOps > 0, "status: \(status)")
    step("an async sync against an unreachable server throws Network; syncStatus records it")
} catch {
    check(false, "unexpected error: \(error)")
}
print("swift: all passed")

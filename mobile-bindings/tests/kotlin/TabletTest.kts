// Two tablets through a real sync server, through the generated Kotlin
// bindings, on the JVM as on Android. Run by mobile-bindings/tests/foreign.rs:
//   kotlinc -cp guichet-mobile.jar:jna.jar:kotlinx-coroutines-core-jvm.jar -script TabletTest.kts
// with the library on jna.library.path and, in the environment,
// GUICHET_SERVER_URL, GUICHET_SERVER_BIN, GUICHET_SERVER_DATA, GUICHET_TEST_DIR.

import guichet.mobile.*
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.io.File
import java.util.concurrent.TimeUnit

val url = System.getenv("GUICHET_SERVER_URL")!!
val serverBin = System.getenv("GUICHET_SERVER_BIN")!!
val serverData = System.getenv("GUICHET_SERVER_DATA")!!
val work = File(System.getenv("GUICHET_TEST_DIR")!!)
val unit = "unit-kt-thies"
val started = System.currentTimeMillis()

fun step(message: String) = println("ok - $message")

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw AssertionError(message())
}

/** The administrator enrols the public key the tablet shows. */
fun enrol(identity: DeviceIdentity, agent: String): Enrolment {
    val process = ProcessBuilder(
        serverBin, "enrol", "--data-dir", serverData,
        "--public-key", identity.publicKey(), "--agent", agent,
        "--role", "tablet", "--unit", unit,
    ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
    val printed = process.inputStream.bufferedReader().readText()
    check(process.waitFor(30, TimeUnit.SECONDS) && process.exitValue() == 0) { "enrol failed" }
    return identity.enrol(printed, url)
}

inline fun <reified E : Throwable> expect(block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("expected ${E::class.simpleName}, got $e", e)
    }
    throw AssertionError("expected ${E::class.simpleName}, nothing was thrown")
}

fun newCase(name: String, phone: String) = NewCase(
    service = "etat-civil",
    requesterPhone = phone,
    requesterName = name,
    requesterLanguage = "fr",
    locality = "Thiès",
    channel = Channel.FIELD,
    unit = unit,
    priority = Priority.NORMAL,
    status = CaseStatus.RECEIVED,
    description = "Duplicata de carte d'identité",
)

class Progress : SyncListener {
    val reports = java.util.Collections.synchronizedList(mutableListOf<SyncProgress>())
    override fun onProgress(progress: SyncProgress) {
        reports.add(progress)
    }
}

// --- identities and stores -------------------------------------------------
val idA = DeviceIdentity.loadOrCreate(File(work, "tablet-a").path)
val idB = DeviceIdentity.loadOrCreate(File(work, "tablet-b").path)
val notYet = expect<GuichetException.InvalidInput> { CaseStore.open(File(work, "x.db").path, idA) }
check(notYet.message!!.contains("not enrolled")) { notYet.message!! }
val enrolA = enrol(idA, "agent-kt-a")
val enrolB = enrol(idB, "agent-kt-b")
check(enrolA.replica != enrolB.replica && enrolA.units == listOf(unit)) { "$enrolA $enrolB" }
val a = CaseStore.open(File(work, "tablet-a/cases.db").path, idA)
val b = CaseStore.open(File(work, "tablet-b/cases.db").path, idB)
step("two tablets enrolled (replicas ${enrolA.replica}, ${enrolB.replica}) and opened")

// --- create and edit on A, sync, read on B ---------------------------------
var case = a.createCase(newCase("Awa Ndiaye", "+221781234567"))
check(case.id.startsWith("${enrolA.replica}-") && isValidReference(case.reference)) { case.toString() }
a.addEvent(case.id, EventKind.CONTACT, "Appel de la citoyenne")
case = a.changeStatus(case.id, CaseStatus.ASSIGNED)
case = a.updateCase(case.id, listOf(FieldValue.Assignee("agent-kt-a"), FieldValue.Priority(Priority.URGENT)))
check(case.status == CaseStatus.ASSIGNED && case.priority == Priority.URGENT) { case.toString() }

val progress = Progress()
val sent = runBlocking { a.sync(progress) }
check(sent.opsSent == 4UL && progress.reports.isNotEmpty()) { "$sent ${progress.reports}" }
val statusA = a.syncStatus()
check(statusA.lastSuccessMs != null && statusA.lastError == null && statusA.pendingOps == 0UL) { statusA.toString() }
val received = runBlocking { b.sync() }
check(received.opsReceived == 4UL) { received.toString() }
val onB = b.getCase(case.id)
check(onB.case == a.getCase(case.id).case) { "${onB.case} / ${a.getCase(case.id).case}" }
check(onB.timeline.any { val w = it.what; w is TimelineWhat.Event && w.kind == EventKind.CONTACT }) { onB.timeline.toString() }
step("created and edited on A, synced through the server, read back on B")

// --- the same field on both, offline; conflict; resolve --------------------
a.updateCase(case.id, listOf(FieldValue.Locality("Thiès Nord")))
b.updateCase(case.id, listOf(FieldValue.Locality("Thiès Est")))
runBlocking { a.sync(); b.sync(); a.sync() }
val detailA = a.getCase(case.id)
val detailB = b.getCase(case.id)
check(detailA.case == detailB.case && detailA.conflicts == detailB.conflicts) { "$detailA\n$detailB" }
check(detailA.conflicts.map { it.field } == listOf(CaseField.LOCALITY)) { detailA.conflicts.toString() }
check(a.listCases(CaseQuery(needsAttention = true)).map { it.id } == listOf(case.id)) { "needs attention" }
val keep = detailA.conflicts[0].values.map { it.value }.first { (it as FieldValue.Locality).value == "Thiès Est" }
check(a.resolveConflict(case.id, keep).conflicts.isEmpty()) { "still in conflict" }
runBlocking { a.sync(); b.sync() }
check(b.getCase(case.id).conflicts.isEmpty() && b.getCase(case.id).case.locality == "Thiès Est") { b.getCase(case.id).toString() }
step("a conflict on the same field shows on both tablets and is resolved everywhere")

// --- queries and typed errors ----------------------------------------------
check(b.listCases(CaseQuery(text = "THIES", unit = unit, limit = 10u)).size == 1) { "text search" }
check(b.listCases(CaseQuery(status = CaseStatus.ASSIGNED, assignee = "agent-kt-a")).size == 1) { "status+assignee" }
val transition = expect<GuichetException.InvalidTransition> { a.changeStatus(case.id, CaseStatus.CLOSED) }
check(transition.message!!.contains("closed")) { transition.message!! }
expect<GuichetException.InvalidInput> { a.getCase("12") }
expect<GuichetException.NotFound> { a.getCase("99-1") }
try {
    a.createCase(newCase("X", "not a phone"))
    throw AssertionError("a bad phone number was accepted")
} catch (e: GuichetException) {
    check(e is GuichetException.InvalidInput) { "got $e" }
}
step("typed errors caught: InvalidTransition, InvalidInput, NotFound")

// --- sync failures and cancelling a coroutine ------------------------------
a.setSyncSettings(SyncSettings(maxAttempts = 2u, firstBackoffMs = 20uL))
a.setServerUrl("http://127.0.0.1:1")
expect<GuichetException.Network> { runBlocking { a.sync() } }
check(a.syncStatus().lastError != null) { a.syncStatus().toString() }
a.setSyncSettings(SyncSettings(maxAttempts = 1000u, firstBackoffMs = 100uL, maxBackoffMs = 100uL))
runBlocking {
    val job = launch { a.sync() }
    val deadline = System.currentTimeMillis() + 10_000
    while (!a.syncStatus().syncing) {
        check(System.currentTimeMillis() < deadline) { "the sync never started" }
        delay(20)
    }
    job.cancel() // the coroutine's cancellation stops the sync in the library
    job.join()
}
var waited = 0
while (a.syncStatus().lastError != "cancelled" && waited < 100) { Thread.sleep(50); waited++ }
check(a.syncStatus().lastError == "cancelled" && !a.syncStatus().syncing) { a.syncStatus().toString() }
a.setServerUrl(url)
a.setSyncSettings(SyncSettings())
a.changeStatus(case.id, CaseStatus.IN_PROGRESS)
runBlocking { a.sync(); b.sync() }
check(b.getCase(case.id).case.status == CaseStatus.IN_PROGRESS && a.syncStatus().lastError == null) { "after recovery" }
step("Network error on a dead URL (in syncStatus), coroutine cancellation stops the sync, recovery")

a.close()
b.close()
println("kotlin: all passed in ${(System.currentTimeMillis() - started) / 1000.0} s")

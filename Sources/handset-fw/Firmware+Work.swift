import BearerDriver
import HandsetCore

/// The one modem command in flight. The engine runs one command at a time, and the longest (an SMS part waits
/// for the network, up to the dialect's +CMGS timeout) must not stop the loop: a job is started, URCs are
/// handled while it runs, and `advanceJob` finishes it. Everything else that needs the modem waits its turn
/// in `startWaitingWork`, one short command per pass of the loop.
enum ModemJob: Equatable {
    case idle
    /// Part `part` (0-based) of `parts` of the outbox's head message, by SMS.
    case smsPart(part: Int, parts: Int)
    /// A sealed datagram from the app, TUN or the held queue: the app hears `sent` or `failed`.
    case espSend
    /// The dummy packet after an SA push (Firmware+App.swift).
    case announce
    /// The outbox's head message by UDP (Firmware+KDUDP.swift).
    case kdDatagram
}

extension Firmware {
    /// Modem work waiting for the modem to be free: a pass of the loop should not wait for input first.
    var hasWaitingWork: Bool {
        (!deletes.isEmpty && !deletesPaused) || readableDue || !storedToRead.isEmpty || !announceDue.isEmpty
            || outboxDue || reopenDue
    }

    /// Finishes the job once the engine has its answer (or its deadline passed).
    mutating func advanceJob() {
        guard job != .idle, driver.engine.commandReady else { return }
        var failure: ATError?
        do throws(ATError) {
            guard try driver.engine.advance() != nil else { return }
        } catch {
            failure = error
        }
        let finished = job
        job = .idle
        if let failure {
            jobFailed(finished, failure)
            if Self.linkLost(failure) && reopenSerialLink() {
                log("bringing the modem up again")
                restartBringUp()
            }
        } else {
            jobDone(finished)
        }
    }

    /// The job will never be answered (the module rebooted, the link was lost): it failed.
    mutating func abortJob(_ e: ATError) {
        guard job != .idle else { return }
        driver.engine.abandonCommand()
        let failed = job
        job = .idle
        jobFailed(failed, e)
    }

    private mutating func jobDone(_ j: ModemJob) {
        switch j {
        case .idle, .announce:
            break
        case .smsPart(let part, let parts):
            stats.smsOut &+= 1
            guard let m = kd.outbox.peek() else { return }
            if part + 1 < parts {
                if !startSMSPart(m, part: part + 1, parts: parts) {
                    log("SMS send failed")
                    if smsSendFailed(m) != .wait { outboxDue = true }
                }
            } else {
                _ = kd.outbox.pop()
                outboxDue = true
            }
        case .espSend:
            stats.espOut &+= 1
            event(.sent)
        case .kdDatagram:
            guard let m = kd.outbox.pop() else { return }
            kd.carriage.noteUDPSent()
            LogLine("fw: key-delegation sent by UDP, type ").append(m.type.rawValue).emit()
            outboxDue = true
        }
    }

    /// Job failures never start other work: the next pass of the loop does, once the modem is known to be usable.
    private mutating func jobFailed(_ j: ModemJob, _ e: ATError) {
        switch j {
        case .idle:
            break
        case .smsPart:
            modemError("SMS send", e)
            log("SMS send failed")
            if let m = kd.outbox.peek(), smsSendFailed(m) != .wait { outboxDue = true }
        case .espSend:
            modemError("ESP send", e)
            event(.failed)
        case .announce:
            modemError("SA announcement", e)
        case .kdDatagram:
            modemError("key-delegation UDP send", e)  // stays in the outbox: tried again on the next tick
        }
    }

    /// One step of waiting modem work, in order: deletes, socket reads, stored SMS, announcements, the outbox,
    /// held datagrams. Each is one short command, or the start of a job.
    mutating func startWaitingWork() throws(ATError) {
        guard modemFree else { return }
        if reopenDue {
            reopenDue = false
            if !openESPSocket() { log("could not reopen the ESP socket") }
            return
        }
        if !deletes.isEmpty && !deletesPaused { return deleteOneStored() }
        if readableDue { return try receiveOneDatagram() }
        if !storedToRead.isEmpty {
            let index = storedToRead[0]
            storedToRead.remove(index)
            do { try handleStored(index) } catch { catchUpDue = true; throw error }
            return
        }
        if let spi = announceDue.pop() { return announce(outboundSPI: spi) }
        if outboxDue { flushOutbox() }
        if job == .idle { flushHeld() }
    }

    /// One datagram the module buffered (Quectel, u-blox); read again until none is left, as one
    /// announcement may stand for several.
    private mutating func receiveOneDatagram() throws(ATError) {
        var inbound = InlineArray<2048, UInt8>(repeating: 0)
        var failure: ATError?
        let socket = espSocket
        let n = withUnsafeMutableBytes(of: &inbound) { b -> Int in
            do throws(ATError) { return try driver.receiveUDP(socket: socket, into: b).count } catch {
                failure = error
                return 0
            }
        }
        readableDue = n > 0
        if let failure { throw failure }
        if n > 0 { withUnsafeBytes(of: inbound) { handleModuleDatagram(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
    }

    /// Held datagrams whose SA has arrived go out, one per job; those waiting longer than 60 s are given up.
    mutating func flushHeld() {
        let now = Self.nowSeconds()
        var pending = held.count
        while pending > 0, modemFree, let h = held.pop() {
            pending -= 1
            if now &- h.since > 60 { continue }  // gave up waiting for a key
            // The SA that came may have brought another inner address (the server's pool chose it): the datagram
            // goes from the address the handset holds now.
            var sel = h.selector
            sel.local = kd.innerAddress
            if plane.sas.outboundSlot(for: sel) != nil {
                h.payload.withBytes { sealAndSend($0, selector: sel, holdIfNoKey: false) }
            } else {
                held.push(h)
            }
        }
    }
}

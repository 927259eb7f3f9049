import BearerDriver
import CHandsetShim
import HandsetCore

typealias HandsetDataPlane = DataPlane<32, 16>

/// The firmware: one thread, one loop. Radio bytes come in through the driver, key-delegation messages go to
/// the client, ESP goes through the data plane, and applications talk to it over a local (AF_UNIX) datagram socket.
struct Firmware: ~Copyable {
    var config: FirmwareConfig
    var plane: HandsetDataPlane
    var kd: KeyDelegationClient<FileKeyStore>
    let driver: ATDriver<SerialPort>
    var reassembler = SMSReassembler<4, 4>(timeout: 600)
    /// Module storage indexes to delete: parts the reassembler let go (message handled, duplicate, timed out,
    /// evicted) and messages not for key delegation. Held parts stay in storage until then.
    var deletes = SMSIndexQueue()
    /// A delete failed: the rest wait for the next tick, so one bad index cannot take every pass of the loop.
    var deletesPaused = false
    /// Stored SMS announced (+CMTI) or listed, read one per pass of the loop.
    var storedToRead = SMSIndexQueue()
    /// The module buffers data for the ESP socket (Quectel, u-blox): read until it says none is left.
    var readableDue = false
    /// The network closed the ESP socket.
    var reopenDue = false
    /// The outbox can move on (a message went, or its SMS failed and it may go by UDP).
    var outboxDue = false
    /// SA pushes whose announcement waits for the modem.
    var announceDue = FixedRing<4, UInt32>(filler: 0)
    var job = ModemJob.idle
    var bringUp = BringUp.start
    /// Key delegation has booted (after the first bring-up).
    var booted = false
    /// The concatenation options of the message whose parts are being sent.
    var smsOptions = SMSSubmitOptions()
    var held = FixedRing<4, HeldDatagram>(filler: HeldDatagram())
    var appSocket = AppSocket()
    var espSocket = -1
    /// Concatenated-SMS reference of the next message. Drawn at boot: restarting at 1 could pair a new
    /// message with parts the gateway still holds from before a reboot.
    var smsReference: UInt16 = 1
    /// Stored SMS could not be read or listed: list storage again on the next tick.
    var catchUpDue = false
    var lastTick: UInt64 = 0
    var stats = FirmwareStats()
    var errorLog = ErrorLogLimiter()
    var sim = SIMReport()
    var power: ModemPower
    var tun = TUNState()
    var scratch = InlineArray<2048, UInt8>(repeating: 0)
    var wire = InlineArray<2048, UInt8>(repeating: 0)

    init(config: FirmwareConfig, plane: consuming HandsetDataPlane, kd: consuming KeyDelegationClient<FileKeyStore>,
         driver: ATDriver<SerialPort>) {
        self.config = config
        self.plane = plane
        self.kd = kd
        self.driver = driver
        self.power = ModemPower(config: config.power)
        self.kd.localAddress = config.localAddress
        self.kd.carriage = KDCarriagePolicy(mode: config.kdUDP.mode, retrySeconds: config.kdUDP.smsRetry)
        self.smsReference = max(1, UInt16(truncatingIfNeeded: self.kd.random.next64()))
    }

    static func nowSeconds() -> UInt64 { hs_monotonic_ms() / 1000 }

    /// Events taken per pass of the loop at most: four times the driver's URC slots.
    static let eventsPerPass = 32

    /// Opens the ESP-in-UDP socket, closing whatever a previous run left open in the module first.
    mutating func openESPSocket() -> Bool {
        driver.closeAllSockets()
        for port in [Int(config.espLocalPort), 0] {
            // Any local port will do on the retry: peers learn the handset's endpoint from its packets.
            do throws(ATError) {
                espSocket = try driver.openUDP(localPort: port)
                return true
            } catch {
                modemError("socket open", error)
            }
        }
        return false
    }

    /// Bring-up is done and no job is in flight: a command may be started.
    var modemFree: Bool { bringUp == .ready && job == .idle }

    /// Runs until SIGTERM or SIGINT (or the process is killed).
    mutating func run() -> Int32 {
        let bound = appSocket.open(path: config.appSocket, owner: config.appUID ?? hs_effective_uid(), group: config.appGroup)
        guard bound == 0 else {
            LogLine("fw: cannot bind the app socket (errno ").append(-bound).append(")").emit()
            return 1
        }
        defer { appSocket.close() }
        openTUN()
        _ = power.open()
        // Each pass: the URCs waiting, then one step: of bring-up, of the job in flight, or of waiting work
        // (Firmware+Work.swift). No pass waits for a long command, so URCs are taken as they come.
        while hs_stop_requested() == 0 {
            if kd.phase == .ready { hs_heap_mark_startup_done() }
            do {
                // Every URC waiting is taken before the modem is given a command (bounded, so a flood cannot
                // starve the modem's work): a command's wait then meets a nearly empty URC queue.
                var wait = modemFree && hasWaitingWork ? 0 : 50
                var taken = 0
                while taken < Self.eventsPerPass, let e = try driver.nextEvent(timeoutMs: wait) {
                    handle(e)
                    taken += 1
                    wait = 0
                }
                if bringUp != .ready {
                    advanceBringUp()
                } else if job != .idle {
                    advanceJob()
                } else {
                    try startWaitingWork()
                }
            } catch {
                if afterModemError("event loop", error) {
                    log("bringing the modem up again")
                    restartBringUp()
                }
            }
            if bringUp == .ready && !booted {
                booted = true
                kd.boot(now: Self.nowSeconds())
                flushOutbox()
            }
            // While the modem is busy, requests that would send wait in their sockets' queues.
            // While the SIM stops bring-up (for a minute at least, maybe for good) the app is answered too, as
            // while the serial link is down (`idle`): COUNTERS then says why (Firmware+SIM.swift).
            if modemFree || simStopsBringUp { pollApp() }
            if modemFree { pollTUN() }
            let now = Self.nowSeconds()
            if now != lastTick && booted {
                lastTick = now
                deletesPaused = false
                if catchUpDue && modemFree {
                    do throws(ATError) { try catchUpStoredSMS() } catch { modemError("SMS catch-up", error) }
                }
                expireHeldParts(now: now)
                kd.tick(now: now, plane: &plane)
                afterKeyDelegation()
            }
        }
        log("stopping")
        closeTUN()
        return 0
    }

    /// One event. Nothing here sends an AT command: what needs the modem is queued for `startWaitingWork`.
    mutating func handle(_ e: ATEvent) {
        switch e {
        case .smsStored(let index):
            if !storedToRead.add(index) { catchUpDue = true }
        case .smsReceived(_, let pdu): handlePDU(pdu, index: nil)
        case .smsStorageFull: catchUpDue = true
        case .urcOverflow:
            log("unsolicited results overflowed the queue; listing stored SMS")
            catchUpDue = true
        case .socketData(let socket, _, let bytes) where socket == espSocket: handleModuleDatagram(bytes)
        case .socketReadable(let socket) where socket == espSocket: readableDue = true
        case .socketData(let socket, _, _):
            // A socket this run did not open (left by an earlier run, or reported before bring-up ended).
            stats.espDropped &+= 1
            LogLine("fw: datagram on socket ").append(socket).append(" (not the ESP socket) dropped").emit()
        case .socketClosed(let socket) where socket == espSocket:
            log("ESP socket closed by the network; reopening")
            readableDue = false
            reopenDue = true
        case .moduleRebooted:
            stats.moduleReboots &+= 1
            // Booting after a power pulse is what bring-up waits for; otherwise it starts over.
            if case .waiting = bringUp { break }
            log("module rebooted; bringing it up again")
            restartBringUp()
        case .registration(let r):
            if !r.status.isRegistered { log("registration lost") }
        default:
            break
        }
    }

    func log(_ s: StaticString) {
        // One line each, flushed (stdout is line-buffered), so a log survives the process being killed.
        LogLine("fw: ").append(s).emit()
    }
}

struct FirmwareStats {
    var espOut: UInt64 = 0
    var espIn: UInt64 = 0
    var espDropped: UInt64 = 0
    var smsOut: UInt64 = 0
    var smsIn: UInt64 = 0
    var smsForeign: UInt64 = 0
    var modemErrors: UInt64 = 0
    var moduleReboots: UInt64 = 0
    /// SA transfers refused by policy (KeyDelegationClient+SAPolicy.swift) when last logged.
    var saRefusalsLogged: UInt64 = 0
    var addressesLogged: UInt64 = 0
}

/// A datagram waiting for its SA (the key request is in flight).
struct HeldDatagram: Sendable {
    var selector = TrafficSelector(local: .anyV4, remote: .anyV4, localPort: 0, remotePort: 0)
    var payload = FixedBytes<512>()
    var since: UInt64 = 0
}

import ArgumentParser
import Foundation
import Logging
import ModemSim

/// `handset-emu modem`: a simulated GSM/LTE module on a pseudo-terminal, with its network.
struct ModemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modem",
        abstract: "Run a simulated SIMCom, Quectel, u-blox or generic modem on a pseudo-terminal.",
        discussion: """
        PATH becomes a symlink to the pty slave; open it like a serial port (any baud). The module speaks AT \
        (TS 27.007/27.005 and the vendor's socket commands). Module UDP sockets are bridged to real UDP sockets on \
        127.0.0.1. stdout carries one JSON line per network event: boot, registration, sms-mo, sms-mo-complete, \
        sms-mt, sms-mt-refused, socket-open, udp-tx, udp-rx, socket-close, fault, sim-pin (each PIN or PUK entered: \
        result, tries left) (and sms-centre with the control port). Logs go to stderr. Runs until SIGINT or SIGTERM.

        SMS CENTRE (--sms-port N): UDP on 127.0.0.1:N, one JSON object per datagram, one JSON reply \
        ({"ok":true,...} or {"ok":false,"error":..}):
          {"op":"send","from":"+15550123","text":"hello"}
              text: GSM 7-bit, else UCS-2; long texts arrive concatenated
          {"op":"send","from":"+1555","data":"C0FFEE","port":2948,"srcPort":9}
              8-bit data with 16-bit port addressing (ports optional)
              options: "order":"reverse"|"shuffle", "duplicate":true, "ref":N
          {"op":"subscribe"}  sender then gets each sms-mo event as a datagram
          {"op":"register","stat":N}  {"op":"close-socket","id":N}
          {"op":"reboot"}

        SMPP (--smpp-port N): the SMS centre also takes SMPP 3.4 ESMEs on TCP
        127.0.0.1:N (bind_transceiver; --smpp-password to check it). A submit_sm
        to the module's number arrives as an MT SMS (binary with UDHI: one SMS
        per submit_sm, its UDH kept); MO SMS go to bound ESMEs as deliver_sm
        (only those to --smpp-number when given).

        PACKET GATEWAY (--packet-gateway, --ike-proxy, --opposite-party; all
        three or none): the operator's packet gateway owns the handset's
        public UDP endpoint, shared by the gateway's IKE proxy and the
        handset's ESP (docs/ike-proxy.md). Inbound on it:
          4 zero octets first (RFC 3948 non-ESP marker: IKE), or the single
          octet 0xFF (NAT-keepalive)  -> --ike-proxy (the proxy charon's
                                         port_nat_t), sent from 127.0.0.1:
                                         --proxy-side-port
          anything else (ESP)         -> the module socket that last sent to
                                         --opposite-party (else the only open
                                         one), as if from the server
        The proxy's datagrams to the proxy side, and module datagrams to
        --opposite-party, leave by the public endpoint. Other destinations
        keep the 127.0.0.1 bridge. A packet-gateway event on stdout names
        the endpoints. In the IKE lab: --packet-gateway 10.99.0.2:4500
        --opposite-party 10.99.0.1:4500 (scripts/ike-lab).

        FAULTS (--faults SPEC): comma-separated NAME[=VALUE][@P|#N]
          NAME      fires at every opportunity
          NAME@P    fires with probability P (0..1, seeded by --seed)
          NAME#N    fires once, at the N-th opportunity
        Names and their opportunities:
          reboot-mid-command  per command: half an answer, silence, banners
          garbage             per command: random high-bit bytes + CRLF first
          drop-final          per command: OK/ERROR/... is never sent
          interleave-urc      per command with a URC at hand (a held one, or
                              +CxREG reporting on): URC before the final code
          delay-urc[=MS]      per URC: held back MS ms (default 1500)
          sms-full            per incoming SMS: storage full (+CMGW gets
                              +CMS ERROR: 322); the centre retries after CMGD
          sms-send-fail[=CODE] per AT+CMGS: +CMS ERROR: CODE (default 331)
          socket-close        per UDP datagram: the network closes the socket
          sms-loss            per SMS part either way: the centre loses it
          sms-duplicate       per SMS part either way: carried twice
          sms-reorder         per concatenated MT message: last part first
          partial-sms         per concatenated MT message: first part only,
                              never the rest
          reboot-between-parts per MT part with a next one: module reboots
          reboot-mid-sms[=1]  per PDU at the +CMGS prompt: module reboots
                              unanswered; =1: the network got it first
          slow-link=BAUD      output paced at BAUD (10 bits per byte)
          slow-sms-send[=MS]  per PDU at the +CMGS prompt: answered MS ms
                              later (default 3000), URCs sent meanwhile

        Examples:
          handset-emu modem --link /tmp/modem   # until Ctrl-C
          handset-emu modem --link /tmp/modem --sim-pin 1234 --sim-pin-tries 1   # until Ctrl-C
          handset-emu modem --link /tmp/modem \\
            --faults 'garbage@0.1,drop-final#5,slow-link=9600'   # until Ctrl-C
          handset-emu modem --link /tmp/modem --packet-gateway 127.0.0.2:14500 \\
            --ike-proxy 127.0.0.1:14501 --opposite-party 127.0.0.1:14502   # until Ctrl-C
        """)

    @Option(help: "Module profile: simcom, quectel, ublox, sim800 or generic.")
    var profile: String = "simcom"

    @Option(help: "Path of the symlink to create for the pty slave.")
    var link: String

    @Option(help: "Faults to inject (see FAULTS below).")
    var faults: String = ""

    @Option(name: .customLong("sms-port"), help: "UDP control port of the SMS centre on 127.0.0.1 (0 picks a free one).")
    var smsPort: Int?

    @Option(name: .customLong("smpp-port"), help: "SMPP 3.4 port of the SMS centre on 127.0.0.1 (0 picks a free one).")
    var smppPort: Int?

    @Option(name: .customLong("smpp-password"), help: "Password an ESME must bind with (default: any).")
    var smppPassword: String?

    @Option(name: .customLong("smpp-number"), help: "Only MO SMS to this number go out as deliver_sm.")
    var smppNumber: String?

    @OptionGroup var packetGateway: PacketGatewayOptions

    @Option(help: "Seed for probabilistic faults and shuffled SMS parts.")
    var seed: UInt64 = 1

    @Option(name: .customLong("boot-delay"), help: "Seconds the module stays silent while booting.")
    var bootDelay: Double = 0.3

    @Option(name: .customLong("sim-pin"), help: "The SIM asks for this PIN (4 to 8 digits) after every power-on.")
    var simPIN: String?

    @Option(name: .customLong("sim-pin-tries"), help: "PIN tries left on the SIM (0: it asks for its PUK, 12345678).")
    var simPINTries: Int = 3

    @Option(name: .customLong("sim-ready-delay"), help: "Seconds the SIM stays busy (+CME ERROR: 14) after taking its PIN.")
    var simReadyDelay: Double = 0

    @Flag(name: .shortAndLong, help: "Debug logging on stderr.")
    var verbose = false

    func validate() throws {
        guard ModemProfile.named(profile) != nil else {
            throw ValidationError("unknown profile '\(profile)'; use simcom, quectel, ublox, sim800 or generic")
        }
        do { _ = try FaultPlan.parse(faults) } catch { throw ValidationError(error.description) }
        if let smsPort, !(0...65535).contains(smsPort) { throw ValidationError("--sms-port must be 0...65535") }
        if let smppPort, !(0...65535).contains(smppPort) { throw ValidationError("--smpp-port must be 0...65535") }
        _ = try packetGateway.config()
        if let simPIN, !(4...8).contains(simPIN.count) || !simPIN.allSatisfy({ $0.isASCII && $0.isNumber }) {
            throw ValidationError("--sim-pin must be 4 to 8 digits")
        }
        if !(0...3).contains(simPINTries) { throw ValidationError("--sim-pin-tries must be 0...3") }
        if simPIN == nil && simPINTries != 3 { throw ValidationError("--sim-pin-tries needs --sim-pin") }
        if !(0...60).contains(simReadyDelay) { throw ValidationError("--sim-ready-delay must be 0...60 seconds") }
    }

    func run() throws {
        let level: Logger.Level = verbose ? .debug : .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let plan = try FaultPlan(spec: faults, seed: seed)
        var timing = SimTiming()
        timing.bootDelay = bootDelay
        timing.simReadyDelay = simReadyDelay
        var identity = SubscriberIdentity()
        identity.pin = simPIN
        identity.pinTries = simPINTries
        let sim = ModemSimulator(profile: ModemProfile.named(profile)!, linkPath: link, faults: plan, smsPort: smsPort,
                                 smpp: smppPort.map { SMPPOptions(port: $0, password: smppPassword, gatewayNumber: smppNumber) },
                                 packetGateway: try packetGateway.config(), identity: identity, timing: timing)
        try sim.start()
        if let port = sim.smsControlPort {
            Logger(label: "modemsim").info("SMS centre listening", metadata: ["udp": "127.0.0.1:\(port)"])
            FileHandle.standardOutput.write(Data("{\"event\":\"sms-centre\",\"port\":\(port)}\n".utf8))
        }
        if let port = sim.smppPort {
            Logger(label: "modemsim").info("SMS centre speaks SMPP", metadata: ["tcp": "127.0.0.1:\(port)"])
            FileHandle.standardOutput.write(Data("{\"event\":\"smpp\",\"port\":\(port)}\n".utf8))
        }
        let done = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { done.signal() }
            s.resume()
            sources.append(s)
        }
        done.wait()
        sim.stop()
        _ = sources
    }
}

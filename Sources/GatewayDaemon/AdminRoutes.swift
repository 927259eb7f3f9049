import Foundation
import Gateway
import HandsetCore
import NIOHTTP1

/// `admin = on`: a few routes on the (loopback) HTTP listener for an operator's tools and the emulator. They read a
/// device's state (never a key) and start what the opposite party would start: a pushed pair, a deleted pair. Work on
/// a device goes through its queue like any uplink, so it never races that device's messages; the answer is 202
/// once it is queued.
///
///     GET  /admin/device/ID                 {"device","epoch","pending_epoch","pending_key","up_counter","down_counter"}
///     POST /admin/push?device=ID&local=A&remote=B&local_port=P&remote_port=Q[&template=T]
///     POST /admin/delete?device=ID&outbound=SPI&inbound=SPI
public enum AdminRoutes {
    public typealias Handler = @Sendable (HTTPMethod, String) -> (HTTPResponseStatus, String, String)

    static func handler(registry: any RegistryStore, gateway: Gateway, serializer: DeviceSerializer,
                        send: @escaping @Sendable ([Downlink]) -> Void) -> Handler {
        { method, uri in
            let parts = uri.split(separator: "?", maxSplits: 1)
            let path = String(parts.first ?? "")
            var q: [String: String] = [:]
            for pair in (parts.count > 1 ? parts[1] : "").split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { q[String(kv[0])] = String(kv[1]).removingPercentEncoding }
            }
            func bad(_ why: String) -> (HTTPResponseStatus, String, String) { (.badRequest, "text/plain", why + "\n") }
            switch (method, path) {
            case (.GET, _) where path.hasPrefix("/admin/device/"):
                guard let id = UInt64(path.dropFirst("/admin/device/".count)) else { return bad("device id: decimal") }
                let d: DeviceRecord?
                do { d = try registry.device(id: id) } catch { return (.serviceUnavailable, "text/plain", "registry failed\n") }
                guard let d else { return (.notFound, "text/plain", "no such device\n") }
                let json = """
                    {"device":"\(id)","epoch":\(d.epoch),"pending_epoch":\(d.pendingEpoch),"pending_key":\(d.pendingKey != nil),\
                    "up_counter":\(d.upCounter),"down_counter":\(d.downCounter)}

                    """
                return (.ok, "application/json", json)
            case (.POST, "/admin/push"):
                guard let id = q["device"].flatMap({ UInt64($0) }) else { return bad("device: decimal id") }
                guard let local = q["local"].flatMap(IPAddress.init(dottedQuad:)),
                      let remote = q["remote"].flatMap(IPAddress.init(dottedQuad:)) else { return bad("local, remote: IPv4 addresses") }
                guard let lp = UInt16(q["local_port"] ?? "0"), let rp = UInt16(q["remote_port"] ?? "0"),
                      let template = UInt16(q["template"] ?? "0") else { return bad("local_port, remote_port, template: 0-65535") }
                let sel = TrafficSelector(local: local, remote: remote, localPort: lp, remotePort: rp)
                serializer.submit(device: id) { send(gateway.push(device: id, selector: sel, template: template)) }
                return (.accepted, "application/json", "{\"queued\":true}\n")
            case (.POST, "/admin/delete"):
                guard let id = q["device"].flatMap({ UInt64($0) }), let out = q["outbound"].flatMap({ UInt32($0) }),
                      let inb = q["inbound"].flatMap({ UInt32($0) }) else { return bad("device, outbound, inbound: decimal") }
                serializer.submit(device: id) { send(gateway.deleteSA(device: id, outboundSPI: out, inboundSPI: inb)) }
                return (.accepted, "application/json", "{\"queued\":true}\n")
            case (.GET, _), (.POST, _): return (.notFound, "text/plain", "not found\n")
            default: return (.methodNotAllowed, "text/plain", "GET or POST\n")
            }
        }
    }
}

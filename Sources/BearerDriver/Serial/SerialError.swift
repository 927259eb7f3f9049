/// A failed serial or pty system call, carrying the errno the shim returned.
public struct SerialError: Error, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case unsupportedBaud
        case noSuchDevice
        case permissionDenied
        case busy
        case hangUp
        case badDescriptor
        case pathTooLong
        case other
    }

    public let kind: Kind
    public let errno: Int32

    public init(kind: Kind, errno: Int32) {
        self.kind = kind
        self.errno = errno
    }

    /// Maps a shim result (-errno) to a typed error. Values are the Linux errno numbers.
    public init(shimResult rc: Int32) {
        let e = rc < 0 ? -rc : rc
        errno = e
        switch e {
        case 22: kind = .unsupportedBaud   // EINVAL: the only invalid argument the shim passes on
        case 2, 6, 19: kind = .noSuchDevice  // ENOENT, ENXIO, ENODEV
        case 1, 13: kind = .permissionDenied  // EPERM, EACCES
        case 16: kind = .busy  // EBUSY
        case 5: kind = .hangUp  // EIO: the other end of a pty or a USB modem went away
        case 9: kind = .badDescriptor  // EBADF
        case 36: kind = .pathTooLong  // ENAMETOOLONG
        default: kind = .other
        }
    }
}

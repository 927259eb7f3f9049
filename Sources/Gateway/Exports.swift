// The adapters come with the core they plug into: `import Gateway` keeps giving both.
@_exported import GatewayCore

// The release version, read from package.json so it is written in one place. Both programs log it, the
// operator records it in the injected pod's status annotation and tags the default sidecar image with it.
import pkg from '../../package.json' with { type: 'json' };

export const VERSION: string = pkg.version;

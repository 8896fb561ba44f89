// Opens the OS binding and prints OPENED, or ERR and the error's name and message.
import { SegmentMain } from "../../mod.ts";

try {
  const sm = new SegmentMain();
  console.log(`OPENED ${sm.os.getpid() > 0}`);
} catch (error) {
  console.log(`ERR ${(error as Error).name}: ${(error as Error).message}`);
}

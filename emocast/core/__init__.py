"""What the device, the hub and the converter share: exit codes and the error base that carries them.

Nothing here imports the device, the hub or the converter; they import from here."""

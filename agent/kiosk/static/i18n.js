// Texts of the kiosk page. Directions are as the person sees them on the
// (mirrored, selfie) screen, which is also the sample's tag.
window.KIOSK_I18N = {
  en: {
    title: 'Face check', start: 'Start', cancel: 'Cancel', frames: 'Frames', fps: 'fps',
    connecting: 'Connecting to the camera…', connected: 'Camera connected', disconnected: 'Camera connection lost – retrying',
    ready: 'Press Start when you are ready.',
    any: 'Look into the camera', left: 'Turn your head slightly to the left', right: 'Turn your head slightly to the right',
    up: 'Tilt your head slightly up', down: 'Tilt your head slightly down',
    countdown: n => `${n} s left`, step: (k, n) => `Picture ${k} of ${n}`, tryN: (t, n) => `attempt ${t} of ${n}`,
    working: 'Checking…', success: 'Done – success', failure: 'Not successful',
    errors: { NoMovement: 'No head movement detected in time.', ChallengeResponseFailed: 'The movement did not match the prompt.',
      LiveDetectionFailed: 'Liveness could not be confirmed.', NoTemplateAvailable: 'This person is not enrolled.',
      NotEnoughSamples: 'Not enough pictures.', Canceled: 'Cancelled.', ServiceError: 'The service failed.',
      NoFaceFound: 'No face found – please look into the camera.', camera: 'The camera could not be started.' },
  },
  de: {
    title: 'Gesichtsprüfung', start: 'Starten', cancel: 'Abbrechen', frames: 'Bilder', fps: 'B/s',
    connecting: 'Verbindung zur Kamera…', connected: 'Kamera verbunden', disconnected: 'Kameraverbindung unterbrochen – neuer Versuch',
    ready: 'Drücken Sie „Starten“, wenn Sie bereit sind.',
    any: 'Bitte in die Kamera schauen', left: 'Drehen Sie den Kopf leicht nach links', right: 'Drehen Sie den Kopf leicht nach rechts',
    up: 'Neigen Sie den Kopf leicht nach oben', down: 'Neigen Sie den Kopf leicht nach unten',
    countdown: n => `noch ${n} s`, step: (k, n) => `Bild ${k} von ${n}`, tryN: (t, n) => `Versuch ${t} von ${n}`,
    working: 'Wird geprüft…', success: 'Fertig – erfolgreich', failure: 'Nicht erfolgreich',
    errors: { NoMovement: 'Keine Kopfbewegung erkannt.', ChallengeResponseFailed: 'Die Bewegung passte nicht zur Aufforderung.',
      LiveDetectionFailed: 'Lebenderkennung nicht bestätigt.', NoTemplateAvailable: 'Diese Person ist nicht registriert.',
      NotEnoughSamples: 'Zu wenige Bilder.', Canceled: 'Abgebrochen.', ServiceError: 'Der Dienst ist fehlgeschlagen.',
      NoFaceFound: 'Kein Gesicht gefunden – bitte in die Kamera schauen.', camera: 'Die Kamera konnte nicht gestartet werden.' },
  },
};

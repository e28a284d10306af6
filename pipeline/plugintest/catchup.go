package plugintest

// CatchUpSchema is a schema for the tests of a cloud store's catch-up
// (pipeline.ChangeFinder): a model owned by a device (Command, both ways),
// a down model for every device (Notice) and an up model (Reading).
const CatchUpSchema = `{
  format: 'onetable:1.1.0', version: '0.0.1',
  indexes: { primary: {hash: 'pk', sort: 'sk'} },
  params: {isoDates: true, timestamps: true},
  models: {
    Command: {
      pk: {type: 'string', value: 'command#${deviceId}'},
      sk: {type: 'string', value: 'command#${id}'},
      deviceId: {type: 'string', required: true},
      id: {type: 'string', required: true},
      n: {type: 'number'},
    },
    Notice: {
      pk: {type: 'string', value: 'notice'},
      sk: {type: 'string', value: 'notice#${id}'},
      id: {type: 'string', required: true},
    },
    Reading: {
      pk: {type: 'string', value: 'device#${deviceId}'},
      sk: {type: 'string', value: 'reading#${id}'},
      deviceId: {type: 'string', required: true},
      id: {type: 'string', required: true},
    },
  },
  process: { Command: {sync: 'both'}, Notice: {sync: 'down'}, Reading: {sync: 'up'} },
}`

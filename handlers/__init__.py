"""The trigger: learns that an upload's object exists and turns it into one job."""

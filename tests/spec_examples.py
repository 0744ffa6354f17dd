"""The request bodies of the seed README, verbatim (tabs, and commas before "}" included).

Clients copy these; every one must be accepted as it stands.
"""

EXAMPLES = [
    '{\n\t"command": "create-otp",\n\t"data": {\n\t\t"date_time": 1629685778,\n\t\t"expiration": 1629685838,\n\t\t"receiver": "08126666666",\n\t\t"message": "Your OTP is %s",\n\t\t"reference": "12345678901234567890",\n\t\t"param1": "100000",\n\t\t"param2": "1234567890",\n\t\t"param3": "987654",\n\t\t"param4": "674527846556468254"\n\t}\n}\n',
    '{\n\t"command": "validate-otp",\n\t"data": {\n\t\t"date_time": 1629685778,\n\t\t"receiver": "08126666666",\n\t\t"otp": "123456",\n\t\t"reference": "12345678901234567890",\n\t\t"param1": "100000",\n\t\t"param2": "1234567890",\n\t\t"param3": "987654",\n\t\t"param4": "674527846556468254"\n\t}\n}\n',
    '{\n\t"command": "send-sms",\n\t"data": {\n\t\t"date_time": 1629685778,\n\t\t"expiration": 1629685838,\n\t\t"id": 123456,\n\t\t"receiver": "08126666666",\n\t\t"message": "Your OTP is 1234"\n\t}\n}\n',
    '{\n\t"command": "send-email",\n\t"data": {\n\t\t"date_time": 1629685778,\n\t\t"expiration": 1629685838,\n\t\t"id": 123456,\n\t\t"receiver": "someone@domain.tld",\n\t\t"message": "Your OTP is 1234"\n\t}\n}\n',
    '{\n\t"command": "block-msisdn",\n\t"data": {\n\t\t"date_time": 1629685778,\n\t\t"receiver": "08126666666",\n\t}\n}\n',
    '{\n\t"command": "unblock-msisdn",\n\t"data": {\n\t\t"date_time": 1629685778,\n\t\t"receiver": "08126666666",\n\t}\n}\n',
    '{\n\t"command": "unblock-msisdn",\n\t"data":{\n\t\t"date_time": 1629685778,\n\t\t"receiver": "08126666666",\n\t}\n}\n',
    '{\n\t"command":"send-sms",\n\t"data": {\n\t\t"date_time": 1629685778,\n\t\t"expiration": 1629685838,\n\t\t"id": 123456,\n\t\t"receiver": "08126666666",\n\t\t"message": "Your OTP is 1234"\n\t}\n}\n',
    '{\n\t"command": "send-sms",\n\t"data": {\t\n\t\t"date_time": 1629685778,\n\t\t"expiration": 1629685838,\n\t\t"id": 123456,\n\t\t"receiver": "08126666666",\n\t\t"message": "Your OTP is 1234"\n\t}\n}\n',
    '{\n\n\t"command": "unblock-msisdn",\n\t"data":{\n\t\t"date_time": 1629685778,\n\t\t"receiver": "08126666666",\n\t}\n}\n',
]
